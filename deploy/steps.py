"""A `prefect deploy` step for prefect.yaml: where the code and the data are, so one prefect.yaml fits the
worker image (/opt/livingmeta, /data) and a local checkout alike.

prefect.yaml runs `deploy.steps.livingmeta_paths` as its build step (`id: paths`) and fills in
`{{ paths.code }}` (the pull step's working folder, the reviews' folders) and `{{ paths.home }}` (warehouses
and outputs) from what it returns.
"""

from __future__ import annotations

from pathlib import Path


def livingmeta_paths(code: str | None = None, home: str | None = None) -> dict[str, str]:
    """Absolute code and data folders for the deployments `prefect deploy` registers.

    Args:
        code: the repository folder (holding prefect.yaml and flows/); default the folder `prefect deploy`
            runs in, which is where Prefect reads prefect.yaml from.
        home: where warehouses (`<home>/warehouses`) and outputs (`<home>/output`) go; default
            $LIVINGMETA_HOME, else ~/.livingmeta (flows/settings.py).
    Returns:
        {"code": ..., "home": ...}, both absolute: workers run in other folders.
    Raises:
        ValueError: `code` is not a livingmeta checkout.
    """
    from flows import settings

    code_dir = Path(code).expanduser().resolve() if code else Path.cwd().resolve()
    if not (code_dir / "prefect.yaml").is_file() or not (code_dir / "flows" / "update.py").is_file():
        raise ValueError(f"{code_dir}: not a livingmeta checkout (no prefect.yaml and flows/update.py here); "
                         "run `prefect deploy --all` from the repository root")
    home_dir = Path(home).expanduser() if home else settings.livingmeta_home()
    return {"code": str(code_dir), "home": str(home_dir.resolve())}
