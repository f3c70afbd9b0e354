"""Griffe extension: trasgi's docstrings as the API reference shows them.

mkdocstrings reads the docstrings with griffe's Google-style parser, which
leaves two things of trasgi's conventions unread:

* Cross-references are Sphinx roles (``:class:`Config```,
  ``:func:`~trasgi.run```). Each becomes a code span, linked to the object's
  entry when the object is public and documented on the site (an optional
  autoref: one that stays plain text when nothing on the site matches).
  Private and third-party names stay plain code: the site names only public
  paths.
* The fields of :class:`trasgi.Config` are described in their attrs metadata
  (the help text of their command-line option), not in docstrings. They are
  listed in an ``Attributes:`` section of the class, with their defaults.

The extension starts from the public names (each public module's
``__all__``) and reaches the private modules only through them, so it does
not depend on how the private modules are laid out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import attrs
import griffe

#: The public modules of each top-level package, as the reference documents.
PUBLIC_MODULES = {
    "trasgi": ("trasgi", "trasgi.testing", "trasgi.workers"),
    "trasgi_web": ("trasgi_web",),
}

_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|attr|mod|data|exc|obj|const):"
    r"`(?P<tilde>~?)(?P<target>[\w.]+)(?P<call>\(\))?`"
)
_ERRORS = (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError)


class TrasgiDocstrings(griffe.Extension):
    """Rewrite the docstrings of the public objects of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        modules = PUBLIC_MODULES.get(pkg.name)
        if modules is None:
            return
        api = PublicAPI(pkg, modules)
        for obj, scopes in api.documented():
            if obj.docstring is not None:
                obj.docstring.value = api.cross_references(obj.docstring.value, scopes)
        if pkg.name == "trasgi":
            describe_config_fields(api.get("trasgi.Config"))


class PublicAPI:
    """The public names of one package, and the objects they lead to."""

    def __init__(self, pkg: griffe.Module, modules: tuple[str, ...]) -> None:
        self.pkg = pkg
        # Longest first, so that trasgi.testing.X is not read as trasgi.X.
        self.modules = sorted(modules, key=len, reverse=True)

    def module(self, path: str) -> griffe.Module:
        if path == self.pkg.path:
            return self.pkg
        found = self.pkg[path.removeprefix(self.pkg.path + ".")]
        assert isinstance(found, griffe.Module), path
        return found

    def exports(self, module: str) -> list[str]:
        return [str(name) for name in self.module(module).exports or ()]

    def get(self, path: str) -> griffe.Object:
        """The object a public path names; KeyError when it is not public."""
        for module in self.modules:
            if path.startswith(module + "."):
                rest = path[len(module) + 1 :]
                break
        else:
            raise KeyError(path)
        first, *others = rest.split(".")
        if first not in self.exports(module) or any(
            part.startswith("_") for part in others
        ):
            raise KeyError(path)
        found = self.module(module)[rest]
        return found.final_target if isinstance(found, griffe.Alias) else found

    def is_public(self, path: str) -> bool:
        try:
            self.get(path)
        except _ERRORS:
            return False
        return True

    def documented(self) -> Iterator[tuple[griffe.Object, tuple[str, ...]]]:
        """Each public object and member, with the scopes its names live in."""
        for module in self.modules:
            yield self.module(module), (module,)
            for name in self.exports(module):
                path = f"{module}.{name}"
                try:
                    obj = self.get(path)
                except _ERRORS:
                    continue
                yield obj, (module,)
                if isinstance(obj, griffe.Class):
                    for member_name, member in obj.all_members.items():
                        if member_name.startswith("_") and member_name != "__init__":
                            continue
                        try:
                            target = (
                                member.final_target
                                if isinstance(member, griffe.Alias)
                                else member
                            )
                        except _ERRORS:
                            continue
                        yield target, (path, module)

    def cross_references(self, text: str, scopes: tuple[str, ...]) -> str:
        """Replace the Sphinx roles of a docstring, naming in ``scopes`` first."""

        def replace(match: re.Match[str]) -> str:
            target = match["target"]
            shown = target.rpartition(".")[2] if match["tilde"] else target
            code = f"<code>{html.escape(shown)}{match['call'] or ''}</code>"
            for identifier in [target, *(f"{scope}.{target}" for scope in scopes)]:
                if self.is_public(identifier):
                    return (
                        f'<autoref identifier="{identifier}" optional>{code}</autoref>'
                    )
            return code

        return _ROLE.sub(replace, text)


def describe_config_fields(config: griffe.Object) -> None:
    """List Config's fields, with their help text and default, in its docstring."""
    import trasgi  # the installed package: attrs knows the fields and defaults

    lines = ["", "Attributes:"]
    for field in attrs.fields(trasgi.Config):
        member = config.members.get(field.name)
        annotation = getattr(member, "annotation", None) or field.type
        description = str(field.metadata.get("help", "")).strip()
        if not description.endswith("."):
            description += "."
        lines.append(
            f"    {field.name} ({annotation}): {description} "
            f"Default: `{default_text(field.default)}`."
        )
    if config.docstring is None:
        config.docstring = griffe.Docstring("", parent=config)
    config.docstring.value = config.docstring.value.rstrip() + "\n" + "\n".join(lines)


def default_text(default: Any) -> str:
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return f"{default.factory.__name__}()"
    return repr(default)
