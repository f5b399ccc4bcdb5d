"""The SageMaker scikit-learn image's serving stack (1.9-0), rebuilt offline, as a test harness.

What runs is the image's own code, not a stand-in:

- ``.venv-serving`` (``./run.sh setup --dev``): the image's packages at the
  image's versions (``requirements-serving.txt``, from the uv.lock of
  aws/deep-learning-containers ``docker/sklearn/1.9-0``, the image's source),
  installed without resolution like its ``uv sync --frozen`` (so
  ``sagemaker-containers==2.8.6.post2`` comes ``--no-deps``) and patched like its
  Dockerfile (``collections.Mapping`` -> ``collections.abc.Mapping``); Python
  3.12 when the machine has it (the image's), else the default Python
  (``.venv-serving/PYTHON_NOTE``).
- ``image/sklearn_image_serving.py``: the image's ``serve`` and WSGI module
  (``sagemaker_sklearn_container/serving.py``), which hand over to
  sagemaker-containers' ``_server.start`` (pip install of the user module,
  then gunicorn with gevent workers) and ``_transformer``/``_worker`` (Flask).

Each run is one "container": a fresh folder standing for ``/opt/ml`` (the model
extracted to ``model/``, ``SAGEMAKER_BASE_DIR`` pointing at it, the way
sagemaker-containers supports running outside ``/opt/ml``), and a fresh Python
environment layered over ``.venv-serving`` (its own ``site-packages`` first, so
the ``pip install`` the container does lands there and not in the shared
environment). The environment is the image's ``ENV`` lines plus the model's
container ``Environment`` (values under ``/opt/ml`` mapped into the folder).
Differences from the image, none of which changes an answer: no nginx in front
of gunicorn (``SAGEMAKER_USE_NGINX=false``; the image's nginx only proxies, with
``client_max_body_size 0``), the machine's pip configuration ignored
(``PIP_CONFIG_FILE=/dev/null``: the image has none that matters) and pip told
not to retry the network (``PIP_RETRIES=0``: there is none, it only fails
sooner).

With ``isolate=True`` (the default) the container runs in a new network
namespace with only loopback (``unshare --net``; ``--user --map-root-user``
when not root), as an endpoint with ``EnableNetworkIsolation`` does; requests
are relayed into the namespace by ``image/container.py``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVING_VENV = REPO / ".venv-serving"
IMAGE_DIR = Path(__file__).resolve().parent / "image"
ENTRY = IMAGE_DIR / "sklearn_image_serving.py"
RELAY = IMAGE_DIR / "container.py"
CONTAINER_ROOT = "/opt/ml"

#: ENV lines of the image's Dockerfile that reach serving (aws/deep-learning-containers
#: docker/sklearn/1.9-0/Dockerfile, commit 2c080f67de; the SM_INPUT* training paths and
#: TEMP, the multi-model server's, left out).
IMAGE_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "SAGEMAKER_SERVING_MODULE": "sklearn_image_serving:main",  # the image's: sagemaker_sklearn_container.serving:main
    "SM_MODEL_DIR": "/opt/ml/model",
}


def serving_python() -> Path:
    return SERVING_VENV / "bin" / "python"


def unavailable_reason() -> str | None:
    """Why the rebuilt serving stack cannot run here (None when it can)."""
    python = serving_python()
    if not python.is_file():
        return f"{SERVING_VENV} is missing: run ./run.sh setup --dev"
    mapping = list(SERVING_VENV.glob("lib/python3*/site-packages/sagemaker_containers/_mapping.py"))
    if not mapping or "collections.abc.Mapping" not in mapping[0].read_text():
        return f"{SERVING_VENV} has no patched sagemaker-containers: run ./run.sh setup --dev"
    if not list(SERVING_VENV.glob("lib/python3*/site-packages/gunicorn")):
        return f"{SERVING_VENV} is incomplete (no gunicorn): run ./run.sh setup --dev"
    return None


def unshare_command() -> list[str]:
    """The prefix that runs a command in a new network namespace."""
    if os.geteuid() == 0:
        return ["unshare", "--net", "--"]
    return ["unshare", "--user", "--map-root-user", "--net", "--"]


def namespace_unavailable_reason() -> str | None:
    """Why a network namespace cannot be made here (None when it can)."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run([*unshare_command(), "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot create a network namespace ({' '.join(unshare_command())}): {probe.stderr.strip()}"
    return None


def _base_env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def map_container_paths(env: dict[str, str], root: Path) -> dict[str, str]:
    """``env`` with ``/opt/ml`` at the start of a value (or of a ``:``-separated
    entry, as in ``PYTHONPATH``) replaced by ``root``."""

    def one(value: str) -> str:
        if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
            return str(root) + value[len(CONTAINER_ROOT):]
        return value

    return {k: ":".join(one(part) for part in v.split(":")) for k, v in env.items()}


def make_python_env(folder: Path) -> Path:
    """A fresh virtual environment over ``.venv-serving``; returns its python."""
    base = subprocess.run([str(serving_python()), "-c",
                           "import sys, sysconfig; print(sys._base_executable); print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, env=_base_env(folder))
    base_python, serving_site = base.stdout.splitlines()
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(folder)], check=True, env=_base_env(folder))
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, env=_base_env(folder)).stdout.strip()
    # addsitedir (not a plain path line) so .venv-serving's own .pth files run too
    # (setuptools' distutils shim: sagemaker_containers imports distutils).
    Path(site, "zz_serving_stack.pth").write_text(f"import site; site.addsitedir({serving_site!r})\n")
    gunicorn = folder / "bin" / "gunicorn"  # the console script, bound to this environment
    gunicorn.write_text(f"#!{python}\nimport sys\nfrom gunicorn.app.wsgiapp import run\nsys.exit(run())\n")
    gunicorn.chmod(0o755)
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


class Container:
    """One run of the image's ``serve`` for a model, in its own folder.

    ``model``: ``model.tar.gz`` or an extracted model folder. ``env``: the
    model's container environment (as in the model package). ``isolate``: in a
    network namespace with only loopback. Use as a context manager or call
    :meth:`start` / :meth:`close`.
    """

    def __init__(self, model: Path, env: dict[str, str], folder: Path, *, isolate: bool = True,
                 workers: int | None = None, port: int | None = None, startup_timeout: float = 90.0) -> None:
        self.model = Path(model)
        self.package_env = dict(env)
        self.folder = Path(folder)
        self.isolate = isolate
        self.workers = workers
        self.port = port or (8080 if isolate else free_port())
        self.startup_timeout = startup_timeout
        self.root = self.folder / "opt_ml"
        self.log = self.folder / "serve.log"
        self.proc: subprocess.Popen | None = None
        self.ready: dict | None = None
        self.pid: int | None = None

    # -- setup ---------------------------------------------------------------

    def _prepare(self) -> dict:
        self.folder.mkdir(parents=True, exist_ok=True)
        model_dir = self.root / "model"
        model_dir.mkdir(parents=True)
        if self.model.is_dir():
            shutil.copytree(self.model, model_dir, dirs_exist_ok=True)
        else:  # SageMaker downloads ModelDataUrl and extracts it to /opt/ml/model
            with tarfile.open(self.model, "r:gz") as tar:
                tar.extractall(model_dir, filter="data")
        home = self.folder / "home"
        home.mkdir()
        python = make_python_env(self.folder / "python")
        env = map_container_paths(IMAGE_ENV, self.root)
        env.update(_base_env(home))
        env["PATH"] = f"{python.parent}:{env['PATH']}"
        env.update({
            "SAGEMAKER_BASE_DIR": str(self.root),
            "SAGEMAKER_USE_NGINX": "false",
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_RETRIES": "0",
            "PYTHONPATH": str(IMAGE_DIR),  # the serving module (installed in the image)
        })
        if self.workers:
            env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(self.workers)
        package = map_container_paths(self.package_env, self.root)
        if "PYTHONPATH" in package:  # the model's PYTHONPATH, after the image's own module
            package["PYTHONPATH"] = f"{env['PYTHONPATH']}:{package['PYTHONPATH']}"
        env.update(package)
        return {"python": str(python), "entry": str(ENTRY), "env": env, "port": self.port, "log": str(self.log),
                "startup_timeout": self.startup_timeout, "loopback_up": self.isolate}

    def start(self) -> dict:
        """Start ``serve``; returns ``{"ready", "ping", "exit_code"}`` once /ping is 200 or it failed."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start ``serve`` without waiting (then :meth:`wait_ready`)."""
        spec = self._prepare()
        spec_file = self.folder / "spec.json"
        spec_file.write_text(json.dumps(spec))
        cmd = [sys.executable, str(RELAY), str(spec_file)]
        if self.isolate:
            cmd = [*unshare_command(), *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=_base_env(self.folder), start_new_session=True)

    def wait_ready(self) -> dict:
        """``{"ready", "ping", "exit_code"}`` once /ping is 200 or ``serve`` failed."""
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"the relay exited before reporting (log {self.log}):\n{self.log_tail()}")
        ready = json.loads(line)
        self.pid = ready.pop("pid", None)  # serve's, and its process group's
        self.ready = ready
        return ready

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        """One HTTP request to the container (from inside its namespace)."""
        msg = {"method": method, "path": path, "headers": headers or {},
               "body_b64": base64.b64encode(body).decode("ascii") if body is not None else None}
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the relay stopped (log {self.log}):\n{self.log_tail()}")
        out = json.loads(line)
        if "error" in out:
            raise ConnectionError(out["error"])
        return Answer(out["status"], {k.lower(): v for k, v in out["headers"]}, base64.b64decode(out["body_b64"]))

    def invoke(self, body: bytes, content_type: str | None = None, accept: str | None = None) -> Answer:
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body, headers)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
            self.proc.wait(30)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self) -> Container:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
