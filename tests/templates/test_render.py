"""Rendering the shipped templates, parameter validation, fill markers and the .pym convention."""

from __future__ import annotations

import json

import pytest

from remora_lsp.core.languages import new_parser
from remora_lsp.templates.catalog import TemplateCatalog
from remora_lsp.templates.errors import ParameterError, TemplateLoadError
from remora_lsp.templates.pym import TemplateSpec, spec_from_data
from remora_lsp.templates.render import render_spec, validate_args

REPRESENTATIVE = {
    "fastapi/router": {"resource": "profile", "model": "User"},
    "fastapi/schemas": {"model": "Invoice", "fields": ["total: float", "customer_id: int", "note"]},
    "fastapi/test_router": {"resource": "order", "app_module": "shop.main"},
    "fastapi/app": {"title": "Shop", "routers": ["orders", "users"]},
    "fastapi/dependency": {"name": "get_token", "header": "x_api_key"},
    "pydantic/model": {"model": "Address", "fields": ["street", "zip_code: int"], "frozen": True},
    "pydantic/validator": {"model": "Signup", "fields": ["email", "age: int"], "field": "age"},
    "pydantic/settings": {"fields": ["database_url", "debug: bool = False"], "prefix": "SHOP_"},
}


def has_error(node) -> bool:
    return node.type == "ERROR" or node.is_missing or any(has_error(c) for c in node.children)


def test_every_shipped_template_is_covered(shipped_specs: dict[str, TemplateSpec]) -> None:
    assert sorted(shipped_specs) == sorted(REPRESENTATIVE)
    assert sum(1 for n in shipped_specs if n.startswith("fastapi/")) >= 3
    assert sum(1 for n in shipped_specs if n.startswith("pydantic/")) >= 3


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_shipped_templates_render_code_that_parses(
    shipped_specs: dict[str, TemplateSpec], name: str
) -> None:
    result = render_spec(shipped_specs[name], REPRESENTATIVE[name])
    assert result.files
    parser = new_parser("python")
    for item in result.files:
        assert item.path.endswith(".py")
        tree = parser.parse(item.content.encode())
        assert not has_error(tree.root_node), item.content
        compile(item.content, item.path, "exec")  # and CPython agrees


def test_router_output(shipped_specs: dict[str, TemplateSpec]) -> None:
    result = render_spec(shipped_specs["fastapi/router"], {"resource": "profile", "model": "User"})
    (router,) = result.files
    assert router.path == "app/routers/profile.py"
    assert "from app.models import User" in router.content
    assert '@router.get("/{profile_id}")' in router.content
    assert [m.name for m in result.fills] == [
        "list_profile",
        "get_profile",
        "create_profile",
        "update_profile",
        "delete_profile",
    ]
    marker = result.fills[1]
    assert router.content.splitlines()[marker.line].strip() == "# remora: fill get_profile"
    assert marker.indent == "    "
    read_only = render_spec(
        shipped_specs["fastapi/router"], {"resource": "profile", "model": "User", "crud": False}
    )
    assert "delete_profile" not in read_only.files[0].content


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"model": "User"}, "parameter `resource` is required"),
        ({"resource": "profile", "model": "user"}, "`model`.*does not match"),
        ({"resource": "class", "model": "User"}, "`resource`.*Python identifier"),
        ({"resource": "a-b", "model": "User"}, "`resource`.*Python identifier"),
        ({"resource": "p", "model": "User", "crud": "maybe"}, "`crud`.*true or false"),
        ({"resource": "p", "model": "User", "colour": "red"}, "unknown parameter `colour`"),
        ({"resource": "p", "model": "User", "models_module": "x; import os"}, "`models_module`"),
        ({"resource": 3, "model": "User"}, "`resource`.*must be a string"),
    ],
)
def test_parameter_validation_names_the_parameter(
    shipped_specs: dict[str, TemplateSpec], args: dict, message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        validate_args(shipped_specs["fastapi/router"], args)


def test_validation_coerces_and_fills_defaults(shipped_specs: dict[str, TemplateSpec]) -> None:
    spec = shipped_specs["pydantic/settings"]
    values = validate_args(spec, {"fields": "a, b: int", "module": "core/config"})
    assert values == {
        "name": "Settings",
        "fields": ["a", "b: int"],
        "prefix": "APP_",
        "module": "core/config",
    }
    with pytest.raises(ParameterError, match=r"`module`.*relative path"):
        validate_args(spec, {"fields": ["a"], "module": "../outside"})


def test_catalog_tools_are_json(shipped_specs: dict[str, TemplateSpec]) -> None:
    catalog = TemplateCatalog(shipped_specs.values())
    listed = json.loads(json.dumps(catalog.list_templates()))
    assert {t["name"] for t in listed} == set(REPRESENTATIVE)
    router = next(t for t in listed if t["name"] == "fastapi/router")
    assert {"name": "model", "type": "identifier", "required": True}.items() <= router["params"][
        1
    ].items()
    rendered = json.loads(
        json.dumps(catalog.render_template("router", REPRESENTATIVE["fastapi/router"]))
    )
    assert rendered["ok"] and rendered["files"][0]["path"] == "app/routers/profile.py"
    missing = catalog.render_template("nope", {})
    assert missing["ok"] is False and "fastapi/router" in missing["templates"]
    bad = catalog.render_template("fastapi/router", {"model": "User"})
    assert bad == {
        "ok": False,
        "kind": "ParameterError",
        "error": "fastapi/router: parameter `resource` is required (Singular snake_case "
        "resource name, e.g. profile; URLs use its plural.)",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "neither TEMPLATE"),
        ({"TEMPLATE": "x"}, "OUTPUT"),
        ({"TEMPLATE": "x", "OUTPUT": "x.py", "PARAMS": [{"name": "a", "type": "float"}]}, "type"),
        ({"TEMPLATE": "x", "OUTPUT": "x.py", "PARAMS": [{"name": "A"}]}, "lower-case"),
        ({"TEMPLATE": "x", "OUTPUT": "x.py", "PARAMS": [{"name": "a"}, {"name": "a"}]}, "twice"),
        ({"TEMPLATE": "x", "OUTPUT": "x.py", "PARAMS": [{"name": "a", "colour": 1}]}, "unknown"),
        ({"FILES": {}}, "non-empty"),
    ],
)
def test_convention_errors(data: dict, message: str) -> None:
    with pytest.raises(TemplateLoadError, match=message):
        spec_from_data(data, name="t/x", pack="t", source="t:x.pym")


def test_multi_file_template_and_fill_markers() -> None:
    spec = spec_from_data(
        {
            "FILES": {
                "pkg/{{ name }}.py": (
                    "def {{ name }}():\n    {# fill: {{ name }}_body #}\n    ...\n"
                ),
                "tests/test_{{ name }}.py": "def test_{{ name }}():\n    assert True\n",
            },
            "PARAMS": [{"name": "name", "type": "identifier"}],
        },
        name="t/x",
        pack="t",
        source="t:x.pym",
    )
    result = render_spec(spec, {"name": "run"})
    assert [f.path for f in result.files] == ["pkg/run.py", "tests/test_run.py"]
    assert result.files[0].content == "def run():\n    # remora: fill run_body\n    ...\n"
    assert [(m.path, m.line, m.name) for m in result.fills] == [("pkg/run.py", 1, "run_body")]
