// A model's status page: its versions, traffic policy, live traffic (from the server's own
// request counters, read every 2 s) and its A/B experiment report as charts.
"use strict";

(() => {
  const { el, api, number } = MP;
  const app = document.getElementById("app");
  const name = decodeURIComponent(location.pathname.split("/").pop());
  const path = encodeURIComponent(name);
  const readings = [];  // the last two readings: {at, totals}
  const rates = [];  // requests per second between readings

  const about = el("section", { class: "about" });
  const versions = el("section", {}, el("h2", {}, "Versions"));
  const traffic = el("section", {}, el("h2", {}, "Traffic policy"));
  const live = el("section", { class: "live" }, el("h2", {}, "Live traffic"));
  const report = el("section", { class: "report" }, el("h2", {}, "Experiment"));
  const failure = el("p", { class: "error", role: "alert" });

  function showAbout(status) {
    MP.put(about, 
      el("h1", {}, status.name),
      el("p", {}, status.description || ""),
      el("p", {}, el("a", { href: `${MP.root}/?model=${path}` }, `Try ${status.name} in the playground`)));
  }

  function showVersions(status) {
    const rows = status.versions.map((v) => [
      `v${v.version}${v.version === status.default_version ? " (default)" : ""}`,
      v.state, v.runtime, v.artifact, v.load_seconds === null ? "–" : `${v.load_seconds} s`, v.error || ""]);
    MP.put(versions, el("h2", {}, "Versions"),
      MP.table(["Version", "State", "Runtime", "Artifact", "Load time", "Error"], rows));
  }

  function policyParts(policy, status) {
    if (!policy || (!policy.split && !policy.canary)) {
      return [el("p", {}, `No split: every request goes to the default version, v${status.default_version}.`)];
    }
    let rows;
    if (policy.canary) {
      const c = policy.canary, share = c.steps[Math.min(c.step, c.steps.length - 1)] / 100;
      rows = [{ label: `v${c.baseline} (baseline)`, value: 1 - share },
        { label: `v${c.version} (canary)`, value: share }];
    } else {
      const total = policy.split.reduce((s, e) => s + e.weight, 0) || 1;
      rows = policy.split.map((e) => ({ label: e.variant || `v${e.version}`, value: e.weight / total }));
    }
    const parts = [MP.bars(rows, { title: "traffic shares" })];
    if (policy.canary) {
      const c = policy.canary;
      parts.push(el("p", {}, `Canary step ${c.step + 1} of ${c.steps.length} (${c.steps.join(" → ")} %)` +
        `${c.auto ? ", advanced automatically" : ", advanced by the admin API"}.`));
    }
    parts.push(el("p", {}, `Callers sending ${policy.sticky_header} keep their variant.`));
    return parts;
  }

  function showTraffic(status) {
    const parts = policyParts(status.traffic, status);
    const shadow = status.shadow;
    if (shadow) {
      parts.push(el("p", {}, `Shadow: v${shadow.version} gets a copy; ${shadow.requests} copies, ` +
        `${shadow.errors} errors, agreement ${shadow.agreement === null ? "–" : MP.percent(shadow.agreement)}.`));
    }
    MP.put(traffic, el("h2", {}, "Traffic policy"), ...parts);
  }

  /** The latency under which a share q of the requests between two readings was answered. */
  function quantile(before, after, q) {
    const counts = after.buckets.map(([le, n], i) => [le, n - ((before.buckets[i] || [le, 0])[1])]);
    const total = after.latency_count - before.latency_count;
    if (total <= 0) return null;
    const wanted = q * total;
    const found = counts.find(([, n]) => n >= wanted);
    return found ? found[0] : null;
  }

  function tile(id, label, value) {
    return el("div", { class: "tile" }, el("span", { class: "tile-label", id: `${id}-label` }, label),
      el("output", { id, "aria-labelledby": `${id}-label` }, value));
  }

  function showLive(status) {
    const totals = status.live;
    if (!totals) {
      MP.put(live, el("h2", {}, "Live traffic"), el("p", {}, "Metrics are off on this server."));
      return;
    }
    const now = performance.now();
    const before = readings.length ? readings[readings.length - 1] : null;
    readings.push({ at: now, totals });
    if (readings.length > 2) readings.shift();
    let rate = null, mean = null, p95 = null;
    if (before) {
      const seconds = (now - before.at) / 1000;
      const answered = totals.latency_count - before.totals.latency_count;
      rate = (totals.requests - before.totals.requests) / seconds;
      mean = answered > 0 ? ((totals.latency_sum - before.totals.latency_sum) / answered) * 1000 : null;
      const p = quantile(before.totals, totals, 0.95);
      p95 = p === null ? null : p * 1000;
      rates.push(rate);
      if (rates.length > 60) rates.shift();
    }
    const ms = (v) => (v === null ? "–" : `${number(v)} ms`);
    MP.put(live, el("h2", {}, "Live traffic"),
      el("div", { class: "tiles" },
        tile("live-rate", "Requests / s", rate === null ? "measuring…" : number(rate)),
        tile("live-mean", "Mean latency", ms(mean)),
        tile("live-p95", "p95 latency (≤)", ms(p95)),
        tile("live-requests", "Predictions answered", String(totals.requests)),
        tile("live-errors", "Errors (5xx)", String(totals.errors)),
        tile("live-feedback", "Feedback received", String(totals.feedback))),
      rates.length > 1 ? MP.sparkline(rates, { title: "requests per second, last two minutes" }) : null,
      el("p", { class: "note" },
        "Since the server started, from its own counters; rate and latency over the last 2 s."));
  }

  function metricText(metric, value) {
    if (value === null || value === undefined) return "–";
    return metric === "accuracy" ? MP.percent(value) : number(value);
  }

  function showReport(answer) {
    if (!answer.ok) {
      MP.put(report, el("h2", {}, "Experiment"), el("p", {}, MP.problem(answer)));
      return;
    }
    const r = answer.json, metric = r.metric;
    const value = (v) => (metric === "accuracy" ? v.accuracy : v.mae);
    const ci = (v) => (v.ci95 ? `${metricText(metric, v.ci95[0])} – ${metricText(metric, v.ci95[1])}` : "–");
    const rows = r.variants.map((v) => [v.variant, v.versions.map((n) => `v${n}`).join(", "),
      String(v.requests), String(v.errors), `${number(v.latency_ms_p50)} / ${number(v.latency_ms_p99)} ms`,
      String(v.feedback), metricText(metric, value(v)), ci(v)]);
    const parts = [el("p", { class: "verdict", id: "verdict" }, r.verdict),
      MP.table(["Variant", "Versions", "Requests", "Errors", "p50 / p99", "Feedback",
        metric === "mae" ? "MAE" : "Accuracy", "95 % CI"], rows)];
    if (metric && r.variants.length) {
      const points = r.variants.map((v) => ({ label: v.variant, value: value(v), n: v.feedback,
        low: v.ci95 ? v.ci95[0] : null, high: v.ci95 ? v.ci95[1] : null }));
      const max = metric === "accuracy" ? 1 : Math.max(1e-9, ...points.map((p) => p.high ?? p.value ?? 0));
      const named = metric === "mae" ? "Mean absolute error" : "Accuracy";
      parts.push(el("h3", {}, `${named} per variant, with 95 % intervals`),
        MP.intervals(points, { title: `${metric} per variant`, max, format: (v) => metricText(metric, v) }));
    }
    for (const c of r.comparisons) {
      const signed = (v) => `${v > 0 ? "+" : ""}${metricText(metric, v)}`;
      const diff = c.difference === null ? "no difference yet" : signed(c.difference);
      const interval = c.ci95 ? ` (95 % CI ${signed(c.ci95[0])} to ${signed(c.ci95[1])})` : "";
      parts.push(el("p", {}, `${c.variant} vs ${c.baseline}: ${diff}${interval}: ${c.verdict}`));
    }
    parts.push(el("p", { class: "note" }, `A verdict needs ${r.min_samples} feedback per variant.`));
    MP.put(report, el("h2", {}, "Experiment"), ...parts);
  }

  async function refresh() {
    const answer = await api(`/ui/status/${path}`);
    if (!answer.ok) {
      failure.textContent = MP.problem(answer);
      return answer.status;
    }
    failure.textContent = "";
    const status = answer.json;
    showAbout(status);
    showVersions(status);
    showTraffic(status);
    showLive(status);
    if (status.outcomes) showReport(await api(`/experiments/${path}`));
    else MP.put(report, el("h2", {}, "Experiment"), el("p", {}, "Outcomes are not recorded on this server."));
    return answer.status;
  }

  async function loop() {
    try {
      await refresh();
    } catch (error) {
      failure.textContent = `The server did not answer: ${error.message}`;
    }
    setTimeout(loop, 2000);
  }

  MP.header("Status");
  document.title = `${name} · ${document.title}`;
  MP.put(app, MP.keyField(() => refresh()), failure, about, versions, traffic, live, report);
  loop();
})();
