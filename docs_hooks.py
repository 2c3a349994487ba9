"""mkdocs hook: render the Sphinx roles of our numpydoc docstrings (``:func:`jacobian```).

mkdocstrings renders the docstrings as Markdown, where ``:func:`x``` would show the role
literally. This turns every ``:func:/:meth:/:class:/:attr:/:mod:`` role into code, linked to
the API reference entry of the same name when the page has one.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:func|meth|class|attr|mod|data):<code>~?([A-Za-z_][\w.]*)</code>")
_RAW_ROLE = re.compile(r":(?:func|meth|class|attr|mod|data):`~?([A-Za-z_][\w.]*)`")
_IDS = re.compile(r'id="(numdiffx\.[\w.]+)"')


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    ids = set(_IDS.findall(html))

    def link(match: re.Match[str]) -> str:
        name = match.group(1)
        short = name.split(".")[-1]
        for target in (name, f"numdiffx.{name}", f"numdiffx.{short}", f"numdiffx.steps.{short}"):
            if target in ids:
                return f'<a href="#{target}"><code>{short}</code></a>'
        return f"<code>{short}</code>"

    html = _ROLE.sub(link, html)
    return _RAW_ROLE.sub(lambda m: m.group(1), html)  # roles inside a type annotation
