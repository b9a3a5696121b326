"""serveConfigV2, checked the way Serve will read it when the RayService starts.

Ray's own validators first (ServeDeploySchema, the actor-option and autoscaling
checks Serve runs at deploy time), then what only shopray knows: the import path
resolves inside the package, `args` is a valid AppConfig, every overridden
deployment exists in the graph build_app makes, and the k8s-specific settings
that `shopray k8s render` applies are still there.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util

import pydantic
import yaml

from shopray.config import AppConfig
from shopray.k8s import serveconfig
from shopray.k8s.problems import Problem, path_text

FIELD = "spec.serveConfigV2"
PACKAGE = "shopray"


def _split_import_path(import_path: str) -> tuple[str, str]:
    module, sep, attr = import_path.partition(":")
    if not sep:  # Serve also accepts module.attr
        module, _, attr = import_path.rpartition(".")
    return module, attr


def _resolve(import_path: str) -> tuple[object | None, str | None]:
    module_name, attr = _split_import_path(import_path)
    if module_name.split(".")[0] != PACKAGE:
        return None, f"import_path {import_path!r} is outside the {PACKAGE} package; the image only ships {PACKAGE}"
    try:
        found = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        found = None
    if found is None:
        return None, f"import_path {import_path!r}: no module {module_name!r} in the {PACKAGE} package"
    target = getattr(importlib.import_module(module_name), attr, None)
    if target is None:
        return None, f"import_path {import_path!r}: module {module_name!r} has no attribute {attr!r}"
    return target, None


def _deployment_names(builder, args: dict, app_name: str) -> list[str]:
    # Serve's own graph walk, as `serve deploy` does it; binding starts nothing.
    from ray.serve._private.build_app import build_app as serve_build

    return [d.name for d in serve_build(builder(args), name=app_name).deployments]


def _k8s_settings(config: dict, args: dict, where: str) -> list[Problem]:
    out = []
    http = config.get("http_options") or {}
    for key, want in serveconfig.K8S_HTTP_OPTIONS.items():
        if http.get(key) != want:
            out.append(Problem(where, f"{FIELD} http_options.{key}", f"is {http.get(key)!r}; KubeRay's serve Service needs {want!r}", "serve"))
    if args.get("catalog"):
        out.append(Problem(where, f"{FIELD} applications[0].args.catalog", "must be unset on k8s: every replica would index at start-up; the indexing RayJob builds the index", "serve"))
    if not (args.get("index") or {}).get("qdrant_url"):
        out.append(Problem(where, f"{FIELD} applications[0].args.index.qdrant_url", "is unset: replicas would use an empty embedded index instead of the Qdrant Service", "serve"))
    return out


def _deployment_options(app: dict, prefix: str, where: str) -> list[Problem]:
    from ray._common.ray_option_utils import actor_options, validate_actor_options
    from ray.serve.config import AutoscalingConfig

    out = []
    for i, dep in enumerate(app.get("deployments") or []):
        at = f"{prefix}.deployments[{i}]({dep.get('name')})"
        options = dep.get("ray_actor_options") or {}
        unknown = [k for k in options if k not in actor_options]
        for key in unknown:
            close = difflib.get_close_matches(key, list(actor_options), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(Problem(where, f"{at}.ray_actor_options", f"unknown key {key!r}{hint}; Ray rejects it when the replica starts", "serve"))
        if not unknown:
            try:
                validate_actor_options(options, in_options=True)
            except (ValueError, TypeError) as e:
                out.append(Problem(where, f"{at}.ray_actor_options", str(e), "serve"))
        if "autoscaling_config" in dep:
            try:
                AutoscalingConfig.model_validate(dep["autoscaling_config"])
            except pydantic.ValidationError as e:
                for err in e.errors():
                    loc = ".".join(str(x) for x in err["loc"])
                    out.append(Problem(where, f"{at}.autoscaling_config{'.' + loc if loc else ''}", err["msg"], "serve"))
    return out


def check(text: str, where: str) -> list[Problem]:
    from ray.serve.schema import ServeDeploySchema

    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [Problem(where, FIELD, f"is not valid YAML: {e}", "serve")]
    try:
        ServeDeploySchema.model_validate(config)
    except pydantic.ValidationError as e:
        return [Problem(where, f"{FIELD} {path_text(config, err['loc'])}", f"{err['msg']} (Ray's ServeDeploySchema)", "serve") for err in e.errors()]

    problems: list[Problem] = []
    for a, app in enumerate(config["applications"]):
        prefix = f"{FIELD} applications[{a}]({app.get('name', 'default')})"
        problems += _deployment_options(app, prefix, where)
        builder, error = _resolve(app["import_path"])
        if error:
            problems.append(Problem(where, f"{prefix}.import_path", error, "serve"))
            continue
        args = app.get("args") or {}
        try:
            AppConfig.model_validate(args)
        except pydantic.ValidationError as e:
            problems += [Problem(where, f"{prefix}.args.{'.'.join(map(str, err['loc']))}", err["msg"] + " (shopray's AppConfig)", "serve") for err in e.errors()]
            continue
        problems += _k8s_settings(config, args, where)
        if args.get("catalog"):
            continue  # building would index the catalog here and now
        names = _deployment_names(builder, args, app.get("name", "default"))
        for i, dep in enumerate(app.get("deployments") or []):
            if dep.get("name") not in names:
                close = difflib.get_close_matches(str(dep.get("name")), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(Problem(where, f"{prefix}.deployments[{i}].name", f"{dep.get('name')!r} is not a deployment of {app['import_path']}{hint}; it has {', '.join(names)}", "serve"))
    return problems
