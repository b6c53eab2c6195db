"""One self-contained HTML page: inline style, figures embedded as base64 PNG, every text
escaped. Nothing is fetched when it is opened."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable

from pipetune.report.notices import Notice
from pipetune.report.tables import Table

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1250px; color: #222;
       background: white; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.6em 0 1.2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.8em; color: #555; }
.notice { padding: 0.5em 0.8em; margin: 0.4em 0; border-left: 5px solid; }
.notice.warning { background: #fff4e5; border-color: #e67e22; }
.notice.info { background: #eef5fb; border-color: #3b7dbf; }
.meta { color: #555; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, parts: Iterable[str]) -> str:
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def heading(level: int, text: str, anchor: str = "") -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<h{level}{ident}>{esc(text)}</h{level}>"


def paragraph(text: str, css: str = "") -> str:
    cls = f' class="{esc(css)}"' if css else ""
    return f"<p{cls}>{esc(text)}</p>"


def notices_html(notices: list[Notice]) -> str:
    return "\n".join(
        f'<div class="notice {esc(n.level.value)}">{esc(n.text)}</div>' for n in notices
    )


def table_html(table: Table, caption: bool = True) -> str:
    head = ""
    if any(table.header):
        head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.header) + "</tr>"
    rows = "\n".join(
        "<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in table.rows
    )
    title = heading(4, table.title) if caption else ""
    return f"{title}<table>\n{head}\n{rows}\n</table>"


def _cell(value: str) -> str:
    numeric = value.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()
    return f'<td class="n">{esc(value)}</td>' if numeric else f"<td>{esc(value)}</td>"


def figure_html(png: bytes, alt: str, caption: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    text = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{text}</figure>'
