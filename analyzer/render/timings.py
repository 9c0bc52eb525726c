"""The fan-out plan as a section of the Markdown and HTML reports, when `audit --timings` is given.

Self-contained on purpose: the report renderers are untouched; this module renders the `Plan`
and inserts it into their output (appended to Markdown, before `</main>` in HTML). The HTML
section draws its own inline SVG: the schedule with every safe fan-out, critical path in red.
"""

from __future__ import annotations

from ..plan import PipelinePlan, Plan, render_markdown, seconds

_TEMPLATE = """
<section id="fanout-plan">
  <h2>Fan-out plan <span class="meta">from measured timings: {{ plan.timings }} ({{ plan.format }})</span></h2>
  {% for p in plan.pipelines %}
  <h3><code>{{ p.id }}</code> <span class="meta">{{ p.style }}</span></h3>
  <p>Makespan today <strong>{{ seconds(p.today) }}</strong>; with every safe fan-out
     <strong>{{ seconds(p.fanout) }}</strong>; Amdahl serial fraction {{ '%.2f' % p.serial_fraction }}.
     Critical path (red): {{ p.fanout_path | join(' → ') }}.</p>
  {% for note in p.notes %}<p class="meta">{{ note }}</p>{% endfor %}
  {{ gantt(p) }}
  {% if p.groups %}
  <table class="grid">
    <thead><tr><th>Group</th><th>Stages</th><th>Saving (p50)</th><th>p99 of max</th><th>Tail ×</th>
      <th>Workers</th><th><code>fanout --apply</code></th></tr></thead>
    <tbody>
    {% for g in p.groups %}
      {% set is_best = best and g.id == best.id %}
      <tr{% if is_best %} class="best"{% endif %}><td><code>{{ g.id }}</code>{% if is_best %} ★{% endif %}</td>
        <td>{{ g.stages | join(', ') }}</td><td>{{ seconds(g.saving_p50) }}</td><td>{{ seconds(g.p99_max) }}</td>
        <td>{{ '%.2f' % g.tail_amplification }}</td><td>{{ g.worker_cap }}</td>
        <td>{{ 'yes' if not g.applicable else g.applicable }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  {% endif %}
  {% if p.blockers %}
  <ul>{% for b in p.blockers[:3] %}<li>unknown <code>{{ b.source }}</code> → <code>{{ b.target }}</code> blocks
    {{ seconds(b.gain) }}: {{ b.via | join('; ') }}</li>{% endfor %}</ul>
  {% endif %}
  {% endfor %}
</section>
"""


def gantt_svg(p: PipelinePlan, width: int = 720, row: int = 18) -> str:
    """An inline SVG of the fan-out schedule (labels escaped here: this is the only markup built by hand)."""
    from markupsafe import escape

    span = max((start + length for _, start, length in p.schedule), default=0.0) or 1.0
    label_width = 190
    scale = (width - label_width - 10) / span
    critical = set(p.fanout_path)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row * len(p.schedule) + 6}" '
             f'role="img" aria-label="schedule with every safe fan-out">']
    for i, (stage, start, length) in enumerate(p.schedule):
        y = 3 + i * row
        colour = "#c0392b" if stage in critical else "#7f8c8d"
        parts.append(f'<text x="0" y="{y + row - 6}" font-size="12" font-family="sans-serif">{escape(stage)}</text>'
                     f'<rect x="{label_width + start * scale:.1f}" y="{y + 2}" width="{max(1.0, length * scale):.1f}" '
                     f'height="{row - 5}" fill="{colour}"><title>{escape(stage)}: {seconds(length)} from '
                     f'{seconds(start)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def html_section(plan: Plan) -> str:
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True)
    template = env.from_string(_TEMPLATE)
    # trusted: gantt_svg escapes every stage name itself
    return template.render(plan=plan, best=plan.best, seconds=seconds, gantt=lambda p: Markup(gantt_svg(p)))


def add_to(fmt: str, text: str, plan: Plan) -> str:
    """`text` (a rendered report) with the plan added; formats other than markdown/html are unchanged."""
    if fmt == "markdown":
        return text.rstrip("\n") + "\n\n" + render_markdown(plan)
    if fmt == "html":
        section = html_section(plan)
        return text.replace("</main>", section + "</main>", 1) if "</main>" in text else text + section
    return text
