"""Jinja2 templates of the report (kept in code so an installed package always has them)."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1b1b1b;
background:#fff;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
header{border-bottom:3px solid #1f4e79;margin-bottom:1rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}
h3{font-size:1.05rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#eef3f8}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.meta{color:#555;font-size:.9rem}.warn{color:#8a4b00}.bad{color:#a01010;font-weight:600}
.changes li{margin:.2rem 0}figure{margin:1rem 0}figcaption{font-size:.85rem;color:#444}
code,.query{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem;word-break:break-word}
.tag{display:inline-block;background:#eef3f8;border-radius:3px;padding:0 .3rem;margin:0 .15rem .15rem 0;font-size:.8rem}
nav a{margin-right:.8rem;display:inline-block}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.5rem 0 1rem}.scroll table{margin:0}
figure.plot{overflow-x:auto}figure.plot svg{min-width:560px}
figure.plot-forest svg,figure.plot-cumulative svg,figure.plot-versions svg{min-width:860px}
figure.plot-tsa svg{min-width:700px}figure.plot-prisma svg{min-width:760px}
.assumptions li,.footnotes li{margin:.1rem 0}.grade{white-space:nowrap}sup{font-size:.7em}
@media (max-width:600px){main{padding:.8rem}h1{font-size:1.3rem}table{font-size:.8rem}th,td{padding:.25rem .3rem}}
"""

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ r.title }} — version {{ r.version }}</title>
<style>{{ css }}</style>
</head>
<body>
<main>
<header>
<p class="meta">Living systematic review · <span id="review-id">{{ doc.review.id }}</span></p>
<h1 id="review-title">{{ r.title }}</h1>
<p class="meta">Version {{ r.version }}{% if doc.version.as_of %} · evidence searched up to {{ doc.version.as_of[:10] }}{% endif %}
{% if doc.version.created_at %} · published {{ doc.version.created_at[:19] | replace("T", " ") }}{% endif %}
{% if doc.previous_version %} · previous: <a href="../v{{ doc.previous_version.version }}/report.html">version {{ doc.previous_version.version }}</a>{% endif %}
· <a href="../index.html">all versions</a></p>
<nav><a href="#changes">What changed</a><a href="#findings">Summary of findings</a><a href="#analyses">Plots</a>
<a href="#prisma">PRISMA</a><a href="#searches">Search log</a><a href="#studies">Included studies</a></nav>
</header>

<section id="changes">
<h2>What changed since {% if doc.previous_version %}version {{ doc.previous_version.version }}{% else %}the start{% endif %}</h2>
{% if not doc.previous_version %}<p>This is the first version of the review.</p>{% endif %}
{{ summary_html }}
{% set trig = doc.version.trigger or {} %}
{% if trig %}<ul class="changes">
{% for key, items in trig.items() %}{% if items %}<li>{{ key | replace("_", " ") }}: {% for it in items %}<span class="tag">{{ r.study_label(it) }}</span>{% endfor %}</li>{% endif %}{% endfor %}
</ul>{% endif %}
<div class="scroll"><table id="changes-table">
<thead><tr><th>Analysis</th><th>Previous version</th><th>This version</th><th>Changes</th><th>Studies added</th><th>Studies removed</th></tr></thead>
<tbody>
{% for c in r.changes %}<tr data-analysis="{{ c.analysis_id }}"><td>{{ c.label }}</td><td class="num">{{ c.fmt_old }}</td><td class="num">{{ c.fmt_new }}</td>
<td>{% for ch in c.changes %}<span class="tag">{{ ch | replace("_", " ") }}</span>{% else %}–{% endfor %}</td>
<td>{{ c.studies_added | join(", ") or "–" }}</td><td>{{ c.studies_removed | join(", ") or "–" }}</td></tr>
{% endfor %}
</tbody></table></div>
</section>

<section id="findings">
<h2>Summary of findings</h2>
{% if r.sof %}<p class="meta">GRADE summary of findings for version {{ r.version }}: per outcome, from its primary analysis. Risks per 1,000 apply the relative effect to the assumed risk without the intervention.</p>
<div class="scroll"><table id="grade-sof">
<thead><tr><th>Outcome</th><th>Relative effect (95% CI)</th><th>Assumed risk without intervention</th><th>Corresponding risk with intervention (95% CI)</th><th>Difference (95% CI)</th><th>Participants (studies)</th><th>Certainty of the evidence (GRADE)</th></tr></thead>
<tbody>
{% for o in r.sof %}<tr data-outcome="{{ o.outcome }}"><td>{{ o.label }}<br><span class="meta">{{ o.measure_name }}</span></td>
<td class="num rel">{{ o.fmt.relative }}</td>
<td class="acr">{{ o.fmt.assumed }}{% if o.control_risk_source %}<br><span class="meta">from {{ o.control_risk_source }}</span>{% endif %}</td>
<td class="num corr">{{ o.fmt.corresponding }}</td><td class="num diff">{{ o.fmt.difference }}</td>
<td class="num part">{{ o.fmt.participants }}</td>
<td class="grade">{{ o.fmt.certainty }}{% if o.footnote_marks %}<sup>{{ o.footnote_marks | join(",") }}</sup>{% endif %}</td></tr>
{% endfor %}</tbody></table></div>
{% if r.sof | selectattr("certainty", "none") | list %}<p class="meta">Certainty "not assessed": the team records its GRADE judgments for an outcome under <code>[outcomes.certainty]</code> in review.toml.</p>{% endif %}
{% if r.sof_footnotes %}<ol class="footnotes" id="sof-footnotes" type="a">{% for f in r.sof_footnotes %}<li>{{ f.text }}</li>{% endfor %}</ol>{% endif %}
{% if r.sof_changes %}<h3 id="sof-changes-head">Summary of findings: what changed since version {{ doc.previous_version.version }}</h3>
<ul id="sof-changes">{% for c in r.sof_changes %}<li><strong>{{ c.label }}</strong>: {{ c.changes | join("; ") }}</li>{% endfor %}</ul>{% endif %}
{% endif %}
<h3>Results of every analysis</h3>
<div class="scroll"><table id="sof-table">
<thead><tr><th>Analysis</th><th>Measure</th><th>Estimate</th><th>95% CI</th><th>95% prediction interval</th><th>k</th>
<th>Participants</th><th>p</th><th>τ²</th><th>I²</th><th>Q test p</th><th>TSA</th></tr></thead>
<tbody>
{% for s in r.summary %}<tr data-analysis="{{ s.analysis_id }}">
<td>{{ s.label }}{% if s.role %} <span class="tag">{{ s.role }}</span>{% endif %}</td>
<td>{{ s.measure_name }}{% if s.method %} ({{ s.method }}){% endif %}</td>
{% if s.has_result %}<td class="num est">{{ s.fmt.estimate }}</td><td class="num ci">{{ s.fmt.ci }}</td><td class="num pi">{{ s.fmt.pi }}</td>
<td class="num k">{{ s.fmt.k }}</td><td class="num n">{{ s.fmt.participants }}</td><td class="num p">{{ s.fmt.p_value }}</td>
<td class="num">{{ s.fmt.tau2 }}</td><td class="num">{{ s.fmt.i2 }}</td><td class="num">{{ s.fmt.q_p }}</td><td>{{ s.fmt.tsa }}</td>
{% else %}<td colspan="10" class="warn">no estimate{% if s.status %} ({{ s.status | replace("_", " ") }}){% endif %}{% if s.error %}: {{ s.error }}{% endif %}</td>{% endif %}
</tr>{% endfor %}
</tbody></table></div>
{% for s in r.summary %}{% for w in s.warnings %}<p class="warn">{{ s.label }}: {{ w }}</p>{% endfor %}{% endfor %}
</section>

<section id="analyses">
<h2>Plots</h2>
{% for s in r.summary %}
<h3 id="analysis-{{ s.analysis_id }}">{{ s.label }}</h3>
{% for p in r.plots_for(s.analysis_id) %}
<figure class="plot plot-{{ p.kind }}" data-kind="{{ p.kind }}">{{ p.svg | safe }}
<figcaption>{{ p.title }} · <a href="{{ p.filename }}">PNG</a></figcaption></figure>
{% if p.kind == "forest" and r.forest_notes.get(s.analysis_id) %}<p class="forest-notes" data-analysis="{{ s.analysis_id }}">{{ r.forest_notes[s.analysis_id] }}</p>{% endif %}
{% if p.kind == "tsa" and r.tsa.get(s.analysis_id) %}{% set t = r.tsa[s.analysis_id] %}
<div class="tsa-text" data-analysis="{{ s.analysis_id }}"><p><strong>Trial sequential analysis:</strong> {{ t.status }}. Assumptions:</p>
<ul class="assumptions">{% for line in t.assumptions %}<li>{{ line }}</li>{% endfor %}</ul>
<p class="meta">The boundary curve is evaluated at every look and on a grid of 60 information fractions (Lan–DeMets O'Brien–Fleming spending); the boundary values used for each look's decision are:</p>
<div class="scroll"><table class="tsa-looks"><thead><tr><th>Look (study added)</th><th>Information</th><th>Fraction of RIS</th><th>Cumulative Z</th><th>Monitoring boundary</th><th>Futility boundary</th></tr></thead><tbody>
{% for l in t.looks %}<tr><td>{{ l.label }}</td><td class="num">{{ l.information }}</td><td class="num">{{ l.fraction }}</td><td class="num">{{ l.z }}</td><td class="num">{{ l.boundary }}</td><td class="num">{{ l.futility }}</td></tr>{% endfor %}
</tbody></table></div></div>{% endif %}
{% else %}<p class="meta">No plots: this analysis has no estimate in this version.</p>{% endfor %}
{% endfor %}
</section>

<section id="prisma">
<h2>PRISMA 2020 flow</h2>
<p class="meta">PRISMA 2020 flow diagram for updated reviews: studies of the previous version, what this version's searches added, and the total. New counts are this version's count minus the previous version's.</p>
{% for p in r.plots_for(None) %}{% if p.kind == "prisma" %}
<figure class="plot plot-prisma" data-kind="prisma">{{ p.svg | safe }}<figcaption>{{ p.title }} · <a href="{{ p.filename }}">PNG</a></figcaption></figure>
{% endif %}{% endfor %}
{% if r.prisma %}<div class="scroll"><table id="prisma-table"><thead><tr><th>Step</th><th>Previous version</th><th>This version</th><th>Change</th></tr></thead><tbody>
{% for p in r.prisma %}<tr data-key="{{ p.key }}"><td>{{ p.label }}</td><td class="num">{{ p.fmt_previous }}</td><td class="num">{{ p.fmt_current }}</td><td class="num">{{ p.fmt_delta }}</td></tr>{% endfor %}
</tbody></table></div>{% else %}<p class="meta">No screening counts recorded yet.</p>{% endif %}
{% set reasons = ((doc.prisma or {}).current or {}).excluded_reasons %}
{% if reasons %}<p>Reasons for exclusion at full text:</p><ul id="exclusion-reasons">{% for reason, n in reasons.items() %}<li>{{ reason }}: {{ n }}</li>{% endfor %}</ul>{% endif %}
{% if doc.prisma and doc.prisma.source %}<p class="meta">Counts from {{ doc.prisma.source }}.</p>{% endif %}
{% if doc.screening_automation %}<p id="screening-automation"><strong>Screening automation.</strong> {{ doc.screening_automation }}</p>{% endif %}
</section>

<section id="searches">
<h2>Search log</h2>
<p class="meta">Every search run up to this version, newest first (PRISMA-S items 1, 8, 13: sources, full queries, dates and counts).</p>
{% if doc.search_definitions %}<div class="scroll"><table id="search-definitions"><thead><tr><th>Source</th><th>Query as sent</th><th>Earliest date</th><th>First used</th></tr></thead><tbody>
{% for d in doc.search_definitions %}<tr><td>{{ d.source }}</td><td class="query">{{ d.query }}</td><td>{{ (d.earliest_date or "–")[:10] }}</td><td>{{ (d.first_used_at or "–")[:10] }}</td></tr>{% endfor %}
</tbody></table></div>{% endif %}
<div class="scroll"><table id="search-runs"><thead><tr><th>Run</th><th>Source</th><th>Mode</th><th>Window searched</th><th>Status</th><th>Found</th><th>New</th><th>Changed</th><th>Unchanged</th><th>Deleted</th></tr></thead><tbody>
{% for s in r.searches %}<tr><td>{{ s.fmt_run }}</td><td>{{ s.source }}</td><td>{{ s.mode }}</td><td>{{ s.fmt_window }}</td>
<td>{{ s.status }}{% if s.error %} <span class="bad">{{ s.error }}</span>{% endif %}</td>
<td class="num">{{ s.n_found }}</td><td class="num">{{ s.n_new }}</td><td class="num">{{ s.n_changed }}</td><td class="num">{{ s.n_unchanged }}</td><td class="num">{{ s.n_deleted }}</td></tr>
{% else %}<tr><td colspan="10">No search runs recorded.</td></tr>{% endfor %}
</tbody></table></div>
</section>

<section id="studies">
<h2>Included studies ({{ r.studies | length }})</h2>
<div class="scroll"><table id="studies-table"><thead><tr><th>Study</th><th>Records</th></tr></thead><tbody>
{% for st in r.studies %}<tr data-study="{{ st.study_id }}"><td><strong>{{ st.label }}</strong>{% if st.retracted %} <span class="bad">retracted</span>{% endif %}</td><td>
{% for rec in st.records %}<div class="record">{% if rec.first_author %}{{ rec.first_author }}. {% endif %}<span class="record-title">{{ rec.title or rec.record_id }}</span>
{% if rec.journal %}<em>{{ rec.journal }}</em>{% endif %}{% if rec.year %} {{ rec.year }}{% endif %}.
{% for l in rec.links %}{% if l.url %}<a href="{{ l.url }}" rel="noopener noreferrer">{{ l.label }}</a>{% else %}<span class="tag">{{ l.label }}</span>{% endif %} {% endfor %}
{% if rec.retracted %}<span class="bad">retracted</span>{% endif %}</div>{% endfor %}
</td></tr>{% else %}<tr><td colspan="2">No studies included yet.</td></tr>{% endfor %}
</tbody></table></div>
</section>

{% if doc.notes %}<section id="notes"><h2>Notes</h2><ul>{% for n in doc.notes %}<li>{{ n }}</li>{% endfor %}</ul></section>{% endif %}
<footer class="meta"><p>Made by livingmeta{% if doc.engine_version %} (statistics engine {{ doc.engine_version }}){% endif %}. Same content: <a href="report.md">Markdown</a> · <a href="report.json">JSON</a>.</p></footer>
</main>
</body>
</html>
"""

INDEX = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ review.title }} — all versions</title><style>{{ css }}</style></head>
<body><main>
<header><p class="meta">Living systematic review · {{ review.id }}</p><h1>{{ review.title }}</h1></header>
<h2>Versions</h2>
<table id="versions"><thead><tr><th>Version</th><th>Evidence up to</th><th>Published</th><th>What changed</th></tr></thead><tbody>
{% for v in versions %}<tr><td>{% if v.href %}<a href="{{ v.href }}">version {{ v.version }}</a>{% else %}version {{ v.version }} <span class="meta">(no report written; run <code>livingmeta report {{ review.id }} --version {{ v.version }}</code>)</span>{% endif %}</td>
<td>{{ (v.as_of or "–")[:10] }}</td><td>{{ (v.created_at or "–")[:19] | replace("T", " ") }}</td><td>{{ v.summary or "–" }}</td></tr>
{% else %}<tr><td colspan="4">No version published yet: a version is recorded once included studies have extracted data.</td></tr>{% endfor %}
</tbody></table>
</main></body></html>
"""
