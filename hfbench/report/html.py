"""index.html: one static page linking every table and figure of a report.

It must open offline, from a file:// URL or a copied folder: no network fonts,
scripts or stylesheets; every link is relative to the page. Nothing on it depends
on when the report was made (the run's own dates come from the records), so the
same results give the same page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; padding-top: .5rem; }
h3 { font-size: 1.05rem; margin-bottom: .3rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .85rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { border-bottom: 2px solid #999; } td.text, th.text { text-align: left; }
table.meta td { text-align: left; }
figure { display: inline-block; margin: .5rem 1rem 1rem 0; vertical-align: top; max-width: 34rem; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .8rem; color: #444; }
.links { font-size: .8rem; } .note { color: #555; font-size: .85rem; }
nav a { margin-right: .8rem; }
"""


@dataclass(frozen=True)
class TableItem:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    bold: frozenset = frozenset()  # (row, col) cells to bold
    caption: str = ""
    links: tuple[tuple[str, str], ...] = ()  # (label, relative path)
    footnotes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FigureItem:
    title: str
    png: str
    caption: str = ""
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TextItem:
    text: str


@dataclass(frozen=True)
class Section:
    title: str
    items: tuple = field(default_factory=tuple)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


def page(title: str, meta: list[tuple[str, str]], sections: list[Section]) -> str:
    """The whole page as a string."""
    nav = " ".join(f'<a href="#{s.anchor}">{_e(s.title)}</a>' for s in sections)
    body = [f"<h1>{_e(title)}</h1>", f"<nav>{nav}</nav>", "<h2 id=\"run\">Run</h2>",
            _meta_table(meta)]
    for s in sections:
        body.append(f'<h2 id="{s.anchor}">{_e(s.title)}</h2>')
        body += [_item(item) for item in s.items]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _meta_table(meta) -> str:
    rows = "".join(f"<tr><td><b>{_e(k)}</b></td><td>{_e(v)}</td></tr>" for k, v in meta)
    return f'<table class="meta">{rows}</table>'


def _item(item) -> str:
    if isinstance(item, TableItem):
        return _table(item)
    if isinstance(item, FigureItem):
        return _figure(item)
    return f'<p class="note">{_e(item.text)}</p>'


def _table(t: TableItem) -> str:
    def cell(tag, text, r, c):
        cls = ' class="text"' if c == 0 or not _numeric(text) else ""
        inner = _e(text)
        if (r, c) in t.bold:
            inner = f"<b>{inner}</b>"
        return f"<{tag}{cls}>{inner}</{tag}>"

    head = "".join(cell("th", h, -1, c) for c, h in enumerate(t.headers))
    rows = "".join("<tr>" + "".join(cell("td", v, r, c) for c, v in enumerate(row)) + "</tr>"
                   for r, row in enumerate(t.rows))
    parts = [f"<h3>{_e(t.title)}</h3>"]
    if t.caption:
        parts.append(f'<p class="note">{_e(t.caption)}</p>')
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    parts += [f'<p class="note">{_e(f)}</p>' for f in t.footnotes]
    if t.links:
        parts.append(_links(t.links))
    return "\n".join(parts)


def _figure(f: FigureItem) -> str:
    cap = _e(f.caption)
    return (f'<figure><img src="{_attr(f.png)}" alt="{_attr(f.title)}">'
            f"<figcaption><b>{_e(f.title)}</b>. {cap} {_links(f.links)}</figcaption></figure>")


def _links(links) -> str:
    return '<span class="links">' + " · ".join(
        f'<a href="{_attr(path)}">{_e(label)}</a>' for label, path in links) + "</span>"


def _numeric(text: str) -> bool:
    head = text.strip().lstrip("−-+").replace("∞", "1")[:1]
    return head.isdigit() or head == "."


def _e(text) -> str:
    return html.escape(str(text), quote=False)


def _attr(text) -> str:
    return html.escape(str(text), quote=True)
