"""Which AWS region (and profile) ``--target aws`` acts in: resolved once, the way the CDK CLI does.

``cdk deploy`` puts the stacks in the region the CDK CLI resolves; every
``stsmon --target aws`` command must then look in that same region, or it
reports "not deployed" for stacks that are deployed one region over. boto3
alone does not resolve the region the same way, so the CLI resolves it here,
once, with the CDK CLI's rules, and hands the result down: to the
configuration (``CDK_DEFAULT_REGION``, as the CDK CLI hands it to ``app.py``),
to every boto3 client (``region_name``, never left to botocore), and to the
CDK CLI when stsmon runs it (``--region``/``--profile``).

The CDK CLI's rules, read in the pinned aws-cdk 2.1148.1
(``node_modules/aws-cdk/lib/index.js``: ``AwsCliCompatible.region``,
``getRegionFromIni``, ``prepareDefaultEnvironment``; the smithy
shared-ini-file loader for the file locations), first match wins:

1. ``--region`` / the ``"region"`` setting of ``cdk.json`` or ``~/.cdk.json``;
2. ``AWS_REGION``, ``AMAZON_REGION``, ``AWS_DEFAULT_REGION``,
   ``AMAZON_DEFAULT_REGION`` (``CDK_DEFAULT_REGION`` is *not* read: the CDK
   CLI overwrites it for the app with the region it resolved);
3. the profile's ``region``: the credentials file's ``[NAME]``, the config
   file's ``[profile NAME]``, then the same for ``default`` (the profile is
   ``--profile`` / the ``"profile"`` setting, else ``AWS_PROFILE``, else
   ``AWS_DEFAULT_PROFILE``, else ``default``; files at ``AWS_CONFIG_FILE`` /
   ``AWS_SHARED_CREDENTIALS_FILE``, else ``~/.aws/config`` / ``~/.aws/credentials``);
4. the EC2 instance metadata service, on EC2 only (not queried here: stsmon
   passes ``--region`` to the CDK CLI it runs, so both agree; on EC2 without
   a configured region set ``AWS_REGION`` before running ``npx cdk`` yourself);
5. ``us-east-1``.

Where botocore differs (1.44: only ``AWS_DEFAULT_REGION``, no fall-back to
the default profile's region, ``AWS_DEFAULT_PROFILE`` before
``AWS_PROFILE``), the CDK CLI's answer is the one that matters, because it
chose where the stacks are. ``tests/stsmon/aws/test_environment.py`` runs the
pinned CDK CLI on the same inputs and compares.

Pure: the environment variables and file locations come in as arguments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StsmonError

DEFAULT_REGION = "us-east-1"
REGION_VARIABLES = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION")
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


@dataclass(frozen=True)
class AwsEnvironment:
    """The resolved region and profile, and where each came from (for messages)."""

    region: str
    region_source: str
    #: The named profile in effect, or None for the default credential chain.
    profile: str | None = None
    profile_source: str = "default credential chain"
    #: Whether boto3 and the CDK CLI must be told the profile explicitly
    #: (``--profile`` or a cdk.json setting; or AWS_PROFILE when
    #: AWS_DEFAULT_PROFILE names another one, which botocore would prefer).
    explicit_profile: bool = False

    @property
    def boto3_profile(self) -> str | None:
        """``profile_name`` for ``boto3.Session`` (None: let botocore's chain find credentials)."""
        return self.profile if self.explicit_profile else None

    def cdk_args(self) -> list[str]:
        """Global options for the CDK CLI, so it resolves exactly this region and profile."""
        args = ["--region", self.region]
        if self.explicit_profile and self.profile:
            args += ["--profile", self.profile]
        return args

    def describe(self) -> str:
        """``eu-west-1 (profile eu in ~/.aws/config)`` — for one-line messages."""
        return f"{self.region} ({self.region_source})"


def _home(environ: Mapping[str, str]) -> Path:
    # smithy's getHomeDir: HOME, USERPROFILE, HOMEDRIVE+HOMEPATH, else the OS's.
    if environ.get("HOME"):
        return Path(environ["HOME"])
    if environ.get("USERPROFILE"):
        return Path(environ["USERPROFILE"])
    if environ.get("HOMEPATH"):
        return Path(environ.get("HOMEDRIVE", "C:\\") + environ["HOMEPATH"])
    return Path.home()


def _file(environ: Mapping[str, str], variable: str, default: str) -> Path:
    home = _home(environ)
    value = environ.get(variable) or f"~/{default}"
    return home / value[2:] if value.startswith("~/") else Path(value)


def config_file(environ: Mapping[str, str]) -> Path:
    """The shared config file: ``AWS_CONFIG_FILE``, else ``~/.aws/config``."""
    return _file(environ, "AWS_CONFIG_FILE", ".aws/config")


def credentials_file(environ: Mapping[str, str]) -> Path:
    """The shared credentials file: ``AWS_SHARED_CREDENTIALS_FILE``, else ``~/.aws/credentials``."""
    return _file(environ, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")


def _ini_profiles(path: Path, *, config: bool) -> dict[str, dict[str, Any]]:
    """Profiles of a shared config/credentials file, parsed by botocore's own loader.

    A missing or unreadable file is an empty one (the CDK CLI swallows those
    errors too; botocore reports a malformed file when a client is created).
    """
    from botocore import configloader
    from botocore.exceptions import BotoCoreError

    if not path.is_file():
        return {}
    try:
        if config:
            return configloader.load_config(str(path)).get("profiles", {})
        return configloader.raw_config_parse(str(path))
    except (BotoCoreError, OSError, UnicodeDecodeError):
        return {}


def cdk_settings(project: Path | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``profile``/``region`` settings the CDK CLI reads: ``~/.cdk.json`` < ``./cdk.json``."""
    merged: dict[str, Any] = {}
    for path in (_home(environ) / ".cdk.json", (project / "cdk.json") if project else None):
        if path is None or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # app.py / load_config report a broken cdk.json with its own message
        if isinstance(data, dict):
            merged.update({k: data[k] for k in ("profile", "region") if isinstance(data.get(k), str) and data[k]})
    return merged


def resolve_aws_environment(
    environ: Mapping[str, str],
    *,
    profile: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> AwsEnvironment:
    """The region and profile the CDK CLI would use (see the module docstring for the order).

    Args:
        environ: the process environment (the CLI passes ``os.environ``).
        profile: ``--profile`` given on the command line.
        settings: :func:`cdk_settings` (``profile``/``region`` from cdk.json files).
    """
    settings = settings or {}
    # The profile.
    explicit = False
    if profile:
        name, profile_source, explicit = profile, "--profile", True
    elif settings.get("profile"):
        name, profile_source, explicit = settings["profile"], "\"profile\" in cdk.json", True
    else:
        name, profile_source = None, "default credential chain"
        for variable in PROFILE_VARIABLES:
            if environ.get(variable):
                name, profile_source = environ[variable], variable
                break
        if name and environ.get("AWS_DEFAULT_PROFILE") not in (None, "", name):
            explicit = True  # botocore would take AWS_DEFAULT_PROFILE; the CDK CLI takes AWS_PROFILE
    lookup = name or "default"

    # The region.
    if settings.get("region"):
        return AwsEnvironment(settings["region"], "\"region\" in cdk.json", name, profile_source, explicit)
    for variable in REGION_VARIABLES:
        if environ.get(variable):
            return AwsEnvironment(environ[variable], variable, name, profile_source, explicit)
    creds, cfg_path = credentials_file(environ), config_file(environ)
    creds_profiles = _ini_profiles(creds, config=False)
    config_profiles = _ini_profiles(cfg_path, config=True)
    for who in (lookup, "default") if lookup != "default" else ("default",):
        for path, profiles in ((creds, creds_profiles), (cfg_path, config_profiles)):
            region = (profiles.get(who) or {}).get("region")
            if isinstance(region, str) and region.strip():
                where = f"profile {who} in {path}"
                if who != lookup:
                    where += f" (profile {lookup} has no region)"
                return AwsEnvironment(region.strip(), where, name, profile_source, explicit)
    return AwsEnvironment(DEFAULT_REGION, "default: no region in the environment or the AWS config files",
                          name, profile_source, explicit)


def aws_environment_from_process(profile: str | None = None, project: Path | None = None) -> AwsEnvironment:
    """:func:`resolve_aws_environment` for this process (the CLI's one call)."""
    environ = dict(os.environ)
    return resolve_aws_environment(environ, profile=profile, settings=cdk_settings(project, environ))


# --------------------------------------------------------------------------
# The synthesized assembly's environments


def assembly_environments(assembly: Path) -> dict[str, tuple[str, str]]:
    """Stack name -> (account, region) of each stack in a cloud assembly's manifest."""
    manifest = Path(assembly) / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StsmonError(f"no cloud assembly at {assembly}: run `stsmon synth` first") from None
    except (OSError, ValueError) as exc:
        raise StsmonError(f"cannot read {manifest}: {exc}") from None
    result: dict[str, tuple[str, str]] = {}
    for name, artifact in (data.get("artifacts") or {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        env = str(artifact.get("environment", ""))
        account, _, region = env.removeprefix("aws://").partition("/")
        result[artifact.get("displayName") or name] = (account, region)
    return result


def assembly_mismatch(assembly: Path, *, region: str, account: str | None = None) -> str | None:
    """Why ``cdk deploy --app ASSEMBLY`` would not put the stacks where stsmon looks, or None.

    The stacks carry an explicit environment (``aws://ACCOUNT/REGION``), fixed
    at synth: deploying an assembly synthesized for another region puts the
    stacks there, and one synthesized without credentials names account
    000000000000, which ``cdk deploy`` refuses.
    """
    envs = assembly_environments(assembly)
    wrong_region = sorted({r for _, r in envs.values() if r != region})
    if wrong_region:
        return (f"{assembly} was synthesized for region {', '.join(wrong_region)}, but --target aws uses {region}: "
                f"run `stsmon synth` again (it passes --region {region} to the CDK CLI)")
    if account:
        wrong_account = sorted({a for a, _ in envs.values() if a != account})
        if wrong_account:
            return (f"{assembly} was synthesized for account {', '.join(wrong_account)}, but your credentials are "
                    f"for {account}: run `stsmon synth` again with these credentials")
    return None
