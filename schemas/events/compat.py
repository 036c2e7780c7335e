"""Is a new JSON Schema of a published event backward compatible with the old one?

``breaking_changes(old, new)`` compares two schemas as pydantic writes them (``$defs`` and
``$ref``, ``anyOf`` with ``{"type": "null"}`` for nullable fields) and lists what would
break a consumer built against ``old``:

- a property removed (a rename is a removal plus an addition);
- a type changed: another JSON type, another ``format``, enum values removed, a
  ``pattern`` changed, a nullable value made non-nullable, tighter bounds;
- a new required property, or an optional property made required;
- ``additionalProperties`` tightened.

Adding an optional property, adding enum values, making a value nullable, dropping a
``format`` or ``pattern`` and relaxing ``required`` are compatible. Nested objects,
``additionalProperties`` schemas (maps) and array items are compared recursively; every
problem names the path of the field (``services[].price``, ``changes.*.old``).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_BOUNDS_UP = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
"""Bounds that break consumers when raised (or added)."""
_BOUNDS_DOWN = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
"""Bounds that break consumers when lowered (or added)."""


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Human-readable problems, each naming the field path; empty when compatible."""
    problems: list[str] = []
    _Comparison(old, new, problems).compare(old, new, "", set())
    return problems


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema, problems: list[str]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems = problems

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(root)'}: {message}")

    def compare(self, old: Any, new: Any, path: str, seen: set[tuple[str, str]]) -> None:
        old_ref, new_ref = _ref_of(old), _ref_of(new)
        if old_ref is not None and new_ref is not None:
            if (old_ref, new_ref) in seen:  # a recursive model: compared already
                return
            seen = seen | {(old_ref, new_ref)}
        old_s = _resolve(self.old_root, old)
        new_s = _resolve(self.new_root, new)
        if old_s is False:
            return  # nothing was valid: anything goes
        if new_s is False:
            self.report(path, "no value is valid any more")
            return
        old_null, old_variants = _variants(self.old_root, old_s)
        new_null, new_variants = _variants(self.new_root, new_s)
        if old_null and not new_null and new_variants is not None:
            self.report(path, "was nullable, is non-nullable now")
        if new_variants is None:  # the new schema accepts any value
            return
        if old_variants is None:
            self.report(path, f"accepted any value, is restricted to {_describe(new_variants)} now")
            return
        if len(old_variants) == 1 and len(new_variants) == 1:
            self.compare_one(old_variants[0], new_variants[0], path, seen)
            return
        for variant in old_variants:
            if not any(self.fits(variant, candidate, path, seen) for candidate in new_variants):
                self.report(
                    path,
                    f"type changed: {_describe([variant])} is not accepted any more "
                    f"(now {_describe(new_variants)})",
                )

    def fits(self, old: Schema, new: Schema, path: str, seen: set[tuple[str, str]]) -> bool:
        trial = _Comparison(self.old_root, self.new_root, [])
        trial.compare_one(old, new, path, seen)
        return not trial.problems

    def compare_one(self, old: Schema, new: Schema, path: str, seen: set[tuple[str, str]]) -> None:
        old_types, new_types = _types(old), _types(new)
        if new_types is not None:
            if old_types is None:
                self.report(path, f"type changed: any type → {'|'.join(sorted(new_types))}")
                return
            lost = {t for t in old_types if t not in new_types and not _widened(t, new_types)} - {
                "null"
            }
            if lost:
                self.report(
                    path,
                    f"type changed: {'|'.join(sorted(old_types))} → {'|'.join(sorted(new_types))}",
                )
                return
        self.compare_format(old, new, path)
        self.compare_values(old, new, path)
        self.compare_bounds(old, new, path)
        if _is_object(old) or _is_object(new):
            self.compare_object(old, new, path, seen)
        if _is_array(old) or _is_array(new):
            self.compare_array(old, new, path, seen)

    def compare_format(self, old: Schema, new: Schema, path: str) -> None:
        old_format, new_format = old.get("format"), new.get("format")
        if new_format is not None and old_format != new_format:
            self.report(path, f"format changed: {old_format or 'none'} → {new_format}")
        old_pattern, new_pattern = old.get("pattern"), new.get("pattern")
        if new_pattern is not None and old_pattern != new_pattern:
            self.report(path, f"pattern changed: {old_pattern or 'none'} → {new_pattern}")

    def compare_values(self, old: Schema, new: Schema, path: str) -> None:
        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if new_values is None:
            return
        if old_values is None:
            shown = ", ".join(repr(v) for v in new_values)
            self.report(path, f"restricted to the values {shown} now")
            return
        removed = [v for v in old_values if v not in new_values]
        if removed:
            shown = ", ".join(repr(v) for v in removed)
            self.report(path, f"enum values removed: {shown}")

    def compare_bounds(self, old: Schema, new: Schema, path: str) -> None:
        for key in _BOUNDS_UP:
            if key in new and (key not in old or new[key] > old[key]):
                self.report(path, f"{key} tightened: {old.get(key, 'none')} → {new[key]}")
        for key in _BOUNDS_DOWN:
            if key in new and (key not in old or new[key] < old[key]):
                self.report(path, f"{key} tightened: {old.get(key, 'none')} → {new[key]}")

    def compare_object(
        self, old: Schema, new: Schema, path: str, seen: set[tuple[str, str]]
    ) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_prop in old_props.items():
            where = _join(path, name)
            if name not in new_props:
                self.report(where, "property removed (or renamed)")
                continue
            self.compare(old_prop, new_props[name], where, seen)
        for name in sorted(new_required - old_required):
            where = _join(path, name)
            if name in old_props:
                self.report(where, "optional property became required")
            else:
                self.report(where, "new required property")
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        where = _join(path, "*")
        if new_extra is False and old_extra is not False:
            self.report(path, "additionalProperties tightened: extra properties are refused now")
        elif new_extra is not True and new_extra != {} and old_extra is not False:
            self.compare({} if old_extra is True else old_extra, new_extra, where, seen)

    def compare_array(
        self, old: Schema, new: Schema, path: str, seen: set[tuple[str, str]]
    ) -> None:
        old_items = old.get("items", {})
        new_items = new.get("items", {})
        if new_items is not True and new_items != {}:
            self.compare({} if old_items is True else old_items, new_items, f"{path}[]", seen)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _ref_of(schema: Any) -> str | None:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        return ref if isinstance(ref, str) else None
    return None


def _resolve(root: Schema, schema: Any) -> Any:
    """The schema with its ``$ref`` (and single-member ``allOf``) followed; siblings of
    the reference (description, default) are kept."""
    seen: set[str] = set()
    while isinstance(schema, dict):
        if "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                raise ValueError(f"circular $ref {ref}")
            seen.add(ref)
            target = _pointer(root, ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = target if not siblings else {**target, **siblings}
            if not isinstance(target, dict):
                return target
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            siblings = {k: v for k, v in schema.items() if k != "allOf"}
            inner = _resolve(root, schema["allOf"][0])
            if not isinstance(inner, dict):
                return inner
            schema = {**inner, **siblings}
        else:
            return schema
    return schema


def _pointer(root: Schema, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"cannot resolve the external $ref {ref}")
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"$ref {ref} does not resolve")
        node = node[key]
    return node


def _variants(root: Schema, schema: Any) -> tuple[bool, list[Schema] | None]:
    """Whether null is accepted, and the non-null alternatives (None: any value)."""
    if schema is True or schema == {}:
        return True, None
    assert isinstance(schema, dict)
    union = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(union, list):
        nullable = False
        variants: list[Schema] = []
        for member in union:
            inner_null, inner = _variants(root, _resolve(root, member))
            nullable = nullable or inner_null
            if inner is None:
                return True, None
            variants.extend(inner)
        return nullable, variants
    types = _types(schema)
    nullable = types is None or "null" in types
    values = _allowed_values(schema)
    if values is not None:
        nullable = None in values
    if types == {"null"} or values == [None]:
        return True, []
    if types is None and not _constrains(schema):
        return True, None
    return nullable, [schema]


def _constrains(schema: Schema) -> bool:
    keys = set(schema) - {"title", "description", "default", "examples", "$comment"}
    return bool(keys)


def _types(schema: Schema) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        if "properties" in schema:
            return {"object"}
        return None
    return {declared} if isinstance(declared, str) else set(declared)


def _widened(old_type: str, new_types: set[str]) -> bool:
    return old_type == "integer" and "number" in new_types


def _allowed_values(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _is_object(schema: Schema) -> bool:
    types = _types(schema)
    return (types is not None and "object" in types) or "properties" in schema


def _is_array(schema: Schema) -> bool:
    types = _types(schema)
    return (types is not None and "array" in types) or "items" in schema


def _describe(variants: list[Schema]) -> str:
    parts = []
    for variant in variants:
        types = _types(variant)
        name = "|".join(sorted(types)) if types else "any"
        if variant.get("format"):
            name += f" ({variant['format']})"
        parts.append(name)
    return " or ".join(parts) or "nothing"
