"""Server-rendered HTML for the dashboard: tables and latency CDFs as inline SVG (no JavaScript, no CDN)."""

from __future__ import annotations

import html
import time

_CSS = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}"
        ".failed,.timed_out{color:#b00}.succeeded{color:#070}svg{background:#fff;border:1px solid #ddd}")
COLORS = ("#1f77b4", "#d62728")


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style>"
            f"</head><body><h1>{_e(title)}</h1><p><a href='/dashboard'>home</a></p>{body}</body></html>")


def table(headers: list[str], rows: list[list[str]], raw_cols: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if i in raw_cols else _e(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def home(artifacts: list[dict], jobs: list[dict]) -> str:
    arts = table(["id", "format", "file", "bytes", "sha256", "uploaded"],
                 [[a["id"], a["format"], a["filename"] or "-", f"{a['bytes']:,}", a["sha256"][:16] + "…",
                   _when(a["created_at"])] for a in artifacts])
    job_rows = []
    for j in jobs:
        lat = (j.get("result") or {}).get("latency") or {}
        link = f"<a href='/dashboard/jobs/{_e(j['id'])}'>{_e(j['id'])}</a>"
        status = f"<span class='{_e(j['status'])}'>{_e(j['status'])}</span>"
        job_rows.append([link, j["artifact_id"], status, j.get("reason") or "", str(j["attempts"]),
                         _ms(lat.get("p50_ms")), _ms(lat.get("p99_ms")), _tok_s(j), _when(j["created_at"])])
    jobs_html = table(["job", "artifact", "status", "reason", "attempts", "p50 ms", "p99 ms", "decode tok/s",
                       "submitted"], job_rows, raw_cols=(0, 2))
    compare = ("<form action='/dashboard/compare'>compare job <input name='a' size=24> with "
               "<input name='b' size=24> <button>compare</button></form>")
    return page("edgekit benchmark server", f"<h2>Artifacts</h2>{arts}<h2>Jobs</h2>{compare}{jobs_html}")


def job_page(job: dict) -> str:
    res = job.get("result") or {}
    lat = res.get("latency") or {}
    rows = [[k, _ms(v) if k.endswith("_ms") else str(v)] for k, v in lat.items()]
    svg = cdf_svg([(job["id"], res.get("samples_ms") or [])])
    err = f"<p class='failed'>{_e(job.get('reason'))}: {_e((job.get('error') or {}).get('message'))}</p>" \
        if job.get("error") else ""
    info = table(["field", "value"], [["status", job["status"]], ["attempts", str(job["attempts"])],
                                      ["phase", job.get("phase") or "-"], ["runtime", res.get("runtime", "-")],
                                      ["threads", str(res.get("threads", "-"))]])
    return page(f"job {job['id']}", f"{err}{info}{_llm_section(res)}<h2>Latency CDF</h2>{svg}"
                f"{table(['statistic', 'value'], rows)}")


def _tok_s(job: dict) -> str:
    """Decode tokens/s of an LLM benchmark (edgekit.llm_bench); '-' for other models."""
    llm = (job.get("result") or {}).get("llm")
    return f"{llm['decode_tokens_per_s']:.1f}" if llm else "-"


def _llm_section(res: dict) -> str:
    llm = res.get("llm")
    if not llm:
        return ""
    rows = [["prompt + new tokens", f"{llm['prompt_tokens']} + {llm['new_tokens']} ({llm['rounds']} rounds)"],
            ["time to first token (p50)", f"{llm['ttft_ms']['p50_ms']:.3f} ms"],
            ["prefill tokens/s", f"{llm['prefill_tokens_per_s']:.1f}"],
            ["decode tokens/s", f"{llm['decode_tokens_per_s']:.1f}"]]
    return "<h2>LLM: tokens/s</h2>" + table(["statistic", "value"], rows) + \
        "<p>latency below: one decode step (ms per token)</p>"


def compare_page(a: dict, b: dict) -> str:
    la, lb = (a.get("result") or {}).get("latency") or {}, (b.get("result") or {}).get("latency") or {}
    keys = ["runs", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "cv"]
    rows = [[k, _ms(la.get(k)), _ms(lb.get(k)), _ratio(la.get(k), lb.get(k))] for k in keys]
    svg = cdf_svg([(a["id"], (a.get("result") or {}).get("samples_ms") or []),
                   (b["id"], (b.get("result") or {}).get("samples_ms") or [])])
    return page("compare jobs", svg + table(["statistic", a["id"], b["id"], "b / a"], rows))


def cdf_svg(series: list[tuple[str, list[float]]], w: int = 640, h: int = 320) -> str:
    """Empirical CDF of each series' run times on a shared x axis (ms)."""
    data = [(name, sorted(s)) for name, s in series if s]
    if not data:
        return "<p>no run times recorded</p>"
    lo = min(s[0] for _, s in data)
    hi = max(s[int(0.995 * (len(s) - 1))] for _, s in data)  # clip the far tail so the body stays readable
    hi = hi if hi > lo else lo + 1e-6
    pad = 40
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' aria-label='latency CDF'>",
             f"<line x1='{pad}' y1='{h - pad}' x2='{w - 10}' y2='{h - pad}' stroke='#888'/>",
             f"<line x1='{pad}' y1='10' x2='{pad}' y2='{h - pad}' stroke='#888'/>",
             f"<text x='{pad}' y='{h - 12}' font-size='11'>{lo:.3f} ms</text>",
             f"<text x='{w - 90}' y='{h - 12}' font-size='11'>{hi:.3f} ms</text>",
             "<text x='4' y='16' font-size='11'>1.0</text>"]
    for i, (name, s) in enumerate(data):
        step = max(1, len(s) // 400)
        pts = []
        for k in range(0, len(s), step):
            x = pad + (min(s[k], hi) - lo) / (hi - lo) * (w - pad - 10)
            y = (h - pad) - (k + 1) / len(s) * (h - pad - 10)
            pts.append(f"{x:.1f},{y:.1f}")
        color = COLORS[i % len(COLORS)]
        parts.append(f"<polyline class='cdf' fill='none' stroke='{color}' stroke-width='1.5' points='{' '.join(pts)}'/>")
        parts.append(f"<text x='{w - 250}' y='{h - pad - 20 - 14 * i}' font-size='11' fill='{color}'>{_e(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _ms(v: object) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _ratio(a: object, b: object) -> str:
    return f"{b / a:.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else "-"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
