"""The `livingmeta` command line: one module per area, each holding one Typer sub-app at module level.

Layout
    root.py      the root app (`--version`) and AREAS, the one list that mounts every area's sub-app
    common.py    shared arguments/options (ReviewArg, WarehouseOpt, JsonOpt, ByOpt), the user-error rule
                 (fail, user_errors, describe_error) and opening a review (review_warehouse, review_config_for)
    output.py    the one way to print (SafeConsole: data is text, never markup, never a secret); layout.py: tables
    review.py (init, update, status)   demo.py   meta.py   analysis.py (estimates, diff)   report.py
    deploy.py (serve, limits)   screen.py + simulate.py (`screen ...`)   extract.py (`extract ...`)
    studies.py (`studies ...`)   web.py (web)   users.py (`users ...`: the web app's accounts)

Area modules import only common, output and layout (never root or this package's `app`), so there is no
import circle (tests/test_cli_package.py); nothing heavy (duckdb, prefect, scipy) is imported at module level,
so `livingmeta --help` stays fast (tests/test_cli_startup.py, bench/cli_startup.py).

Adding a command (the one way): in the area's module, decorate a function with `@app.command("name")`; its
docstring is the help. The command opens the warehouse (`review_warehouse`), calls ONE operation of
warehouse/<area>.py (a read-decide-write operation runs in one transaction there; SQL lives only in
warehouse/), and prints. Arguments, files and printing are the command's edge; rules are not.
Adding an area: a new module with `app = typer.Typer(...)` and its commands, and one line in root.AREAS.

What each user action runs (command, then the one function that does it; tests/test_cli_package.py checks
that every command is listed and every function exists):

    livingmeta init                    livingmeta.config.parse_review  (validates the template it writes)
    livingmeta update                  flows.update.update_review  (the flow; each step is a warehouse operation)
    livingmeta status                  warehouse.reviews.review_status
    livingmeta demo                    flows.demo.demo_timeline
    livingmeta meta                    livingmeta.stats.meta_analyze
    livingmeta estimates               warehouse.analysis.published_estimates
    livingmeta diff                    warehouse.versions.compare_versions
    livingmeta report                  warehouse.publish.version_report  (then tasks.publish.write_report)
    livingmeta serve                   flows.deployments.serve_deployments
    livingmeta limits                  flows.deployments.ensure_rate_limits
    livingmeta screen next             warehouse.screening.record_decision  (one per key; undo_decision for u)
    livingmeta screen export           warehouse.screening.export_records
    livingmeta screen import           warehouse.screening.import_decisions
    livingmeta screen conflicts        warehouse.screening.list_conflicts  (and screening_kappa)
    livingmeta screen simulate         livingmeta.screening.simulation.simulate
    livingmeta extract template        warehouse.extraction.included_study_ids  (rows: livingmeta.extraction.template_rows)
    livingmeta extract import          warehouse.extraction.import_extraction_file
    livingmeta extract suggestions     warehouse.extraction.list_suggestions
    livingmeta extract accept          warehouse.extraction.accept_suggestions
    livingmeta studies list            warehouse.linking.review_studies
    livingmeta studies link            warehouse.linking.link_record
    livingmeta studies unlink          warehouse.linking.unlink_record
    livingmeta studies merge           warehouse.linking.merge_into
    livingmeta web                     web.app.create_app  (each page calls the warehouse operation above)
    livingmeta users add               warehouse.accounts.add_user
    livingmeta users role              warehouse.accounts.set_role
    livingmeta users passwd            warehouse.accounts.set_password
    livingmeta users remove            warehouse.accounts.remove_user
    livingmeta users list              warehouse.accounts.list_users
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `flows.cli:main` (the entry point) and `from flows.cli import app` build the whole app; importing one
    # area module (flows.cli.output, flows.cli.screen, ...) builds only what that module needs
    if name in ("app", "main"):
        from flows.cli import root

        return getattr(root, name)
    raise AttributeError(f"module 'flows.cli' has no attribute {name!r}")
