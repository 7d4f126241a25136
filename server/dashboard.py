"""Server-rendered HTML for the dashboard: tables, p50 bars and latency CDFs as inline SVG (no JavaScript, no
CDN). ``p50_svg`` also draws the side-by-side chart of ``edgekit bench --server A --server B --html``."""

from __future__ import annotations

import html
import time

_CSS = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}"
        ".failed,.timed_out{color:#b00}.succeeded{color:#070}svg{background:#fff;border:1px solid #ddd}")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style>"
            f"</head><body><h1>{_e(title)}</h1><p><a href='/dashboard'>home</a></p>{body}</body></html>")


def table(headers: list[str], rows: list[list[str]], raw_cols: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if i in raw_cols else _e(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def home(artifacts: list[dict], jobs: list[dict], summaries: dict[str, dict] | None = None,
         bars_from: list[dict] | None = None) -> str:
    """``summaries``: artifact id -> server.summary.summary(row) (model, target, recipe, bytes, parity);
    ``bars_from``: the jobs the p50 chart draws from (default: ``jobs``)."""
    summaries = summaries or {}
    art_rows = []
    for a in artifacts:
        sm = summaries.get(a["id"]) or {}
        art_rows.append([a["id"], sm.get("model") or "-", sm.get("target") or a["format"], sm.get("recipe") or "-",
                         sm.get("precision") or "-", f"{sm.get('model_bytes') or a['bytes']:,}",
                         sm.get("parity") or "-", a["filename"] or "-", a["sha256"][:16] + "…",
                         _when(a["created_at"])])
    arts = table(["id", "model", "target", "recipe", "precision", "model bytes", "parity", "uploaded as", "sha256",
                  "uploaded"], art_rows)
    job_rows = []
    for j in jobs:
        lat = (j.get("result") or {}).get("latency") or {}
        link = f"<a href='/dashboard/jobs/{_e(j['id'])}'>{_e(j['id'])}</a>"
        status = f"<span class='{_e(j['status'])}'>{_e(j['status'])}</span>"
        label = (summaries.get(j["artifact_id"]) or {}).get("label") or j["artifact_id"]
        job_rows.append([link, label, status, j.get("reason") or "", j.get("phase") or "", str(j["attempts"]),
                         _ms(lat.get("p50_ms")), _ms(lat.get("p99_ms")), _tok_s(j), _when(j["created_at"])])
    jobs_html = table(["job", "artifact", "status", "reason", "phase", "attempts", "p50 ms", "p99 ms",
                       "decode tok/s", "submitted"], job_rows, raw_cols=(0, 2))
    compare = ("<form action='/dashboard/compare'>compare job <input name='a' size=24> with "
               "<input name='b' size=24> <button>compare</button></form>")
    chart = p50_svg(p50_bars(jobs if bars_from is None else bars_from, summaries))
    return page("edgekit benchmark server", f"<h2>p50 latency by artifact</h2>{chart}<h2>Artifacts</h2>{arts}"
                f"<h2>Jobs</h2>{compare}{jobs_html}")


def p50_bars(jobs: list[dict], summaries: dict[str, dict], server: str = "") -> list[dict]:
    """One bar per (artifact, runtime, threads, server): the newest succeeded job's p50."""
    bars: dict[tuple, dict] = {}
    for j in jobs:  # newest first: the first one seen wins
        res = j.get("result") or {}
        p50 = (res.get("latency") or {}).get("p50_ms")
        if j.get("status") != "succeeded" or not isinstance(p50, (int, float)):
            continue
        where = server or _machine(res)
        key = (j["artifact_id"], res.get("runtime"), res.get("threads"), where)
        label = (summaries.get(j["artifact_id"]) or {}).get("label") or j["artifact_id"]
        bars.setdefault(key, {"label": f"{label} · {res.get('threads', '?')} thr", "server": where,
                              "p50_ms": float(p50), "job": j.get("id")})
    return list(bars.values())


def results_page(results: list[dict], servers: list[str] | None = None) -> str:
    """A standalone page (no links back to a server) for `edgekit bench --html`: p50 bars, one colour per server."""
    bars, rows = [], []
    for i, r in enumerate(results):
        where = servers[i] if servers else "local"
        name = "/".join(str(r.get("artifact", "?")).rstrip("/").split("/")[-2:])  # out/resnet18/onnx -> resnet18/onnx
        label = f"{name} · {r.get('threads', '?')} thr"
        lat = r.get("latency") or {}
        bars.append({"label": label, "server": where, "p50_ms": float(lat.get("p50_ms") or 0.0)})
        rows.append([where, str(r.get("artifact", "")), r.get("target", ""), r.get("runtime", ""),
                     str(r.get("threads", "")), str(lat.get("runs", "")), _ms(lat.get("p50_ms")),
                     _ms(lat.get("p90_ms")), _ms(lat.get("p99_ms"))])
    body = p50_svg(bars) + table(["server", "artifact", "target", "runtime", "threads", "runs", "p50 ms",
                                  "p90 ms", "p99 ms"], rows)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>edgekit bench</title><style>{_CSS}</style>"
            f"</head><body><h1>edgekit bench: p50 by artifact and server</h1>{body}</body></html>")


def _machine(res: dict) -> str:
    m = res.get("machine") or {}
    return str(m.get("cpu") or m.get("machine") or "this server")


def p50_svg(bars: list[dict], w: int = 760) -> str:
    """Horizontal bars of p50 (ms), shortest first, one colour per server; the fastest is marked."""
    if not bars:
        return "<p>no finished benchmarks yet</p>"
    bars = sorted(bars, key=lambda b: b["p50_ms"])
    servers = list(dict.fromkeys(b["server"] for b in bars))
    left, right, row = 300, 90, 22
    h = row * len(bars) + 30 + 16 * len(servers)
    top = max(b["p50_ms"] for b in bars) or 1.0
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' "
             "aria-label='p50 latency by artifact'>"]
    for i, b in enumerate(bars):
        y = 10 + i * row
        width = max(1.0, b["p50_ms"] / top * (w - left - right))
        color = COLORS[servers.index(b["server"]) % len(COLORS)]
        mark = " (fastest)" if i == 0 and len(bars) > 1 else ""
        parts.append(f"<text x='{left - 6}' y='{y + 14}' font-size='11' text-anchor='end'>{_e(b['label'][:48])}</text>")
        parts.append(f"<rect class='p50' x='{left}' y='{y + 3}' width='{width:.1f}' height='{row - 6}' fill='{color}'>"
                     f"<title>{_e(b['label'])} on {_e(b['server'])}: p50 {b['p50_ms']:.3f} ms</title></rect>")
        parts.append(f"<text x='{left + width + 4:.1f}' y='{y + 14}' font-size='11'>{b['p50_ms']:.3f} ms{mark}</text>")
    for k, srv in enumerate(servers):
        y = 10 + len(bars) * row + 16 * k + 12
        color = COLORS[k % len(COLORS)]
        parts.append(f"<rect x='{left}' y='{y - 9}' width='10' height='10' fill='{color}'/>"
                     f"<text x='{left + 14}' y='{y}' font-size='11'>{_e(srv)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def job_page(job: dict) -> str:
    res = job.get("result") or {}
    lat = res.get("latency") or {}
    rows = [[k, _ms(v) if k.endswith("_ms") else str(v)] for k, v in lat.items()]
    svg = cdf_svg([(job["id"], res.get("samples_ms") or [])])
    error = job.get("error") or {}
    stderr = "\n".join(str((error.get("details") or {}).get("stderr") or "").strip().splitlines()[:20])
    err = (f"<p class='failed'>{_e(job.get('reason'))}: {_e(error.get('message'))}</p>"
           + (f"<h2>stderr (first lines)</h2><pre>{_e(stderr)}</pre>" if stderr else "")) if job.get("error") else ""
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
