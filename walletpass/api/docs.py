"""``GET /api/docs``: a reference page rendered on the server from the OpenAPI document.

Nothing here is written by hand: operations (grouped by tag), parameters, bodies,
responses, schemas and problem types all come from the document, so the page cannot
drift from the API. No script is loaded (the page works offline and under a strict CSP).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

_env = Environment(autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any] | None) -> str:
    """A short human reading of a JSON schema: ``ProgramOut``, ``array of string``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(type_of(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items'))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    if isinstance(kind, list):
        kind = " | ".join(kind)
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "default",
)


def constraints(schema: dict[str, Any]) -> str:
    parts = [f"{k}: {schema[k]!r}" for k in _CONSTRAINTS if k in schema]
    for sub in schema.get("anyOf", []):
        parts += [f"{k}: {sub[k]!r}" for k in _CONSTRAINTS if k in sub]
    return ", ".join(parts)


_env.filters["type_of"] = type_of
_env.filters["constraints"] = constraints
_env.filters["ref_name"] = _ref_name

_PAGE = _env.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.info.title }} reference</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d1d1f; }
nav { position: fixed; top: 0; bottom: 0; width: 16rem; overflow: auto; padding: 1rem;
      background: #f5f5f7; border-right: 1px solid #ddd; }
main { margin-left: 18rem; padding: 1rem 2rem; max-width: 60rem; }
code, .path { font-family: ui-monospace, monospace; }
.op { border: 1px solid #ddd; border-radius: 6px; padding: .5rem 1rem; margin: 1rem 0; }
.method { font-weight: bold; text-transform: uppercase; display: inline-block; width: 4.5rem; }
.get { color: #0a7d32; } .post { color: #0055b3; } .patch { color: #a05a00; }
.delete { color: #b3001b; } .put { color: #6b3fa0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; border-bottom: 1px solid #eee; padding: .25rem .5rem;
         vertical-align: top; }
.muted { color: #666; }
nav a { display: block; color: inherit; text-decoration: none; }
nav h3 { margin: 1rem 0 .25rem; font-size: .8rem; text-transform: uppercase; color: #666; }
</style>
</head>
<body>
<nav>
<strong>{{ doc.info.title }}</strong>
<a href="{{ openapi_url }}">openapi.json</a>
{% for tag, ops in groups %}
<h3>{{ tag }}</h3>
{% for path, method, op in ops %}
<a href="#{{ op.operationId }}"><span class="method {{ method }}">{{ method }}</span>{{ path }}</a>
{% endfor %}
{% endfor %}
<h3>Reference</h3>
<a href="#problems">Problem types</a>
<a href="#schemas">Schemas</a>
</nav>
<main>
<h1>{{ doc.info.title }} <span class="muted">v{{ doc.info.version }}</span></h1>
<p>{{ doc.info.description }}</p>
<p>Base URL: <code>{{ doc.servers[0].url }}</code>. The machine-readable document is
<a href="{{ openapi_url }}">openapi.json</a>.</p>
{% for tag, ops in groups %}
<h2 id="tag-{{ tag }}">{{ tag }}</h2>
{% for path, method, op in ops %}
<section class="op" id="{{ op.operationId }}">
<h3><span class="method {{ method }}">{{ method }}</span><span class="path">{{ path }}</span></h3>
<p>{{ op.summary }} <span class="muted">{{ op.description }}</span></p>
{% if op.parameters %}
<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Required</th><th>Notes</th></tr>
{% for p in op.parameters %}
<tr><td><code>{{ p.name }}</code></td><td>{{ p["in"] }}</td>
<td>{{ p.schema | type_of }}</td><td>{{ "yes" if p.required else "no" }}</td>
<td>{{ p.schema | constraints }} {{ p.description or p.schema.description or "" }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if op.requestBody and "application/json" in op.requestBody.content %}
{% set body = op.requestBody.content["application/json"].schema %}
<p>Body: <a href="#schema-{{ body | type_of }}"><code>{{ body | type_of }}</code></a></p>
{% elif op.requestBody %}
{% set form = op.requestBody.content["multipart/form-data"].schema %}
<p>Body: <code>multipart/form-data</code> with
{% for name, field in form.properties.items() %}<code>{{ name }}</code>
({{ "file" if field.format == "binary" else field.type -}}
{{ ", required" if name in form.required }}){{ ", " if not loop.last }}{% endfor %}.</p>
{% endif %}
<table><tr><th>Status</th><th>Answer</th></tr>
{% for status, resp in op.responses.items() %}
<tr><td>{{ status }}</td><td>
{% for media, content in (resp.content or {}).items() %}
<code>{{ media }}</code>
<a href="#schema-{{ content.schema | type_of }}">{{ content.schema | type_of }}</a>.
{% endfor %}
{{ resp.description }}</td></tr>
{% endfor %}
</table>
</section>
{% endfor %}
{% endfor %}
<h2 id="problems">Problem types</h2>
<p>Every error is <code>application/problem+json</code> (RFC 9457) with one of these
stable <code>type</code> values.</p>
<table><tr><th>type</th><th>Status</th><th>Title</th></tr>
{% for p in doc["x-problem-types"] %}
<tr><td><code>{{ p.type }}</code></td><td>{{ p.status }}</td><td>{{ p.title }}</td></tr>
{% endfor %}
</table>
<h2 id="schemas">Schemas</h2>
{% for name, schema in schemas %}
<section id="schema-{{ name }}">
<h3>{{ name }}</h3>
{% if schema.description %}<p>{{ schema.description }}</p>{% endif %}
{% if schema.properties %}
<table><tr><th>Field</th><th>Type</th><th>Required</th><th>Notes</th></tr>
{% for field, prop in schema.properties.items() %}
<tr><td><code>{{ field }}</code></td><td>{{ prop | type_of }}</td>
<td>{{ "yes" if field in (schema.required or []) else "no" }}</td>
<td>{{ prop | constraints }} {{ prop.description or "" }}</td></tr>
{% endfor %}
</table>
{% else %}
<p><code>{{ schema | type_of }}</code></p>
{% endif %}
</section>
{% endfor %}
</main>
</body>
</html>
"""
)


def render(doc: dict[str, Any], openapi_url: str = "/api/v1/openapi.json") -> str:
    """The HTML reference for an OpenAPI document."""
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append((path, method, op))
    schemas = sorted(doc.get("components", {}).get("schemas", {}).items())
    return _PAGE.render(
        doc=doc, groups=list(groups.items()), schemas=schemas, openapi_url=openapi_url
    )
