"""The endpoint tests' fixtures live in ``endpoint_fixtures.py`` (importable from other folders)."""

from endpoint_fixtures import (  # noqa: F401
    isolated_imports,
    module_servers,
    runtime_client,
    server_env,
    start_server,
    toy_builder,
    toy_functions_model_dir,
    toy_model_dir,
    toy_server,
)
