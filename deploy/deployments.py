"""Deployments for workers and `prefect deploy`: re-exported from flows/deployments.py.

Imports go deploy -> flows; the CLI (`livingmeta serve`) builds the same deployments from flows/ directly.
"""

from flows.deployments import (  # noqa: F401
    ENTRYPOINT,
    FLOW_NAME,
    RATE_LIMITS,
    SERVE_SUFFIX,
    DeploymentSpec,
    build_deployments,
    deployment_spec,
    deployment_specs,
    find_reviews,
    prefect_schedule,
    rate_limit_commands,
    serve_name,
)
