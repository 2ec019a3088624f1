// The playground: choose a model and a version, fill the form made from its signature, predict,
// see the answer, copy the request, and send the true label back as feedback.
"use strict";

(() => {
  const { el, api } = MP;
  const app = document.getElementById("app");
  const state = { models: [], fields: [], image: null, answer: null };

  // ---- the form, from the signature ----

  /** A value inside the field's bounds, as the server's FieldSpec.example_value picks it. */
  function example(field) {
    if (field.example !== undefined && field.example !== null) return field.example;
    if (field.choices && field.choices.length) return field.choices[0];
    if (field.type === "str") return "";
    if (field.type === "bool") return false;
    const low = field.gt ?? field.ge, high = field.lt ?? field.le;
    let value = 1.0;
    if (low !== undefined && high !== undefined) value = (low + high) / 2;
    else if (low !== undefined) value = low + 1;
    else if (high !== undefined) value = high - 1;
    return field.type === "int" ? Math.round(value) : value;
  }

  function bounds(field) {
    const parts = [];
    if (field.gt !== undefined) parts.push(`> ${field.gt}`);
    if (field.ge !== undefined) parts.push(`≥ ${field.ge}`);
    if (field.lt !== undefined) parts.push(`< ${field.lt}`);
    if (field.le !== undefined) parts.push(`≤ ${field.le}`);
    return parts.join(", ");
  }

  /** A number read from its input, or an error that names the field and the broken rule. */
  function readNumber(field, input) {
    const text = input.value.trim();
    const value = field.type === "int" ? Number(text) : parseFloat(text);
    if (text === "" || !Number.isFinite(value)) return { error: `${field.name}: enter a number` };
    if (field.type === "int" && !Number.isInteger(value)) return { error: `${field.name}: enter a whole number` };
    const broken = (field.gt !== undefined && !(value > field.gt)) ||
      (field.ge !== undefined && !(value >= field.ge)) ||
      (field.lt !== undefined && !(value < field.lt)) ||
      (field.le !== undefined && !(value <= field.le));
    return broken ? { error: `${field.name}: must be ${bounds(field)}` } : { value };
  }

  function imageControl(field, id, help) {
    const preview = el("img", { class: "preview", alt: "preview of the chosen image", hidden: true });
    const input = el("input", { id, type: "file", accept: "image/png,image/jpeg", "aria-describedby": help });
    const zone = el("div", { class: "drop" }, input, el("span", {}, "or drop a PNG or JPEG here"), preview);
    const take = (file) => {
      if (!file) return;
      const reader = new FileReader();
      reader.addEventListener("load", () => {
        state.image = reader.result;  // a data: URL, which the server decodes
        preview.src = reader.result;
        preview.hidden = false;
      });
      reader.readAsDataURL(file);
    };
    input.addEventListener("change", () => take(input.files[0]));
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      take(e.dataTransfer.files[0]);
    });
    const read = () => (state.image ? { value: state.image } : { error: `${field.name}: choose an image` });
    return { node: zone, read };
  }

  function control(field, index, single) {
    const id = `field-${index}`, help = `${id}-help`;
    const described = { id, "aria-describedby": help };
    let node, read;
    if (field.choices && field.choices.length) {
      node = el("select", described, field.choices.map((c) => el("option", { value: c }, c)));
      node.value = String(example(field));
      read = () => ({ value: node.value });
    } else if (field.type === "bool") {
      node = el("input", { ...described, type: "checkbox", checked: Boolean(example(field)) });
      read = () => ({ value: node.checked });
    } else if (field.type === "str") {
      node = single ? el("textarea", { ...described, rows: 4 })
        : el("input", { ...described, type: "text" });
      node.value = String(example(field));
      read = () => ({ value: node.value });
    } else {
      node = el("input", {
        ...described, type: "number", step: field.type === "int" ? "1" : "any",
        min: field.ge ?? field.gt, max: field.le ?? field.lt,
      });
      node.value = String(example(field));
      read = () => readNumber(field, node);
    }
    return { node, read };
  }

  function fieldRow(field, index, signature) {
    const id = `field-${index}`;
    const made = signature.image ? imageControl(field, id, `${id}-help`)
      : control(field, index, signature.inputs.length === 1);
    const hint = [field.description, bounds(field)].filter(Boolean).join(" · ");
    state.fields.push({ field, read: made.read });
    return el("div", { class: "field" },
      el("label", { for: id }, field.name),
      made.node,
      el("small", { id: `${id}-help` }, hint));
  }

  // ---- choosing a model ----

  const current = () => state.models.find((m) => m.name === modelSelect.value);

  const modelSelect = el("select", { id: "model" });
  const versionSelect = el("select", { id: "version" });
  const about = el("p", { class: "about" });
  const statusLink = el("a", {});
  const form = el("form", { class: "fields", novalidate: true });
  const formError = el("p", { class: "error", role: "alert" });
  const predictButton = el("button", { type: "submit", class: "primary" }, "Predict");
  const answerBox = el("section", { class: "answer", "aria-live": "polite" });

  function showModel() {
    const model = current();
    state.fields = [];
    state.image = null;
    formError.textContent = "";
    about.textContent = model.description || "";
    statusLink.textContent = `Status of ${model.name}`;
    statusLink.setAttribute("href", `${MP.root}/status/${encodeURIComponent(model.name)}`);
    MP.put(versionSelect, 
      el("option", { value: "" }, `default (v${model.default_version}, or the traffic policy)`),
      ...model.versions.map((v) => el("option", { value: v.version, disabled: v.state !== "ready" },
        `v${v.version} (${v.state}, ${v.runtime})`)));
    const signature = model.signature;
    if (!signature) {
      MP.put(form, el("p", {}, `${model.name} is not ready: it has no signature yet.`));
      return;
    }
    MP.put(form, ...signature.inputs.map((f, i) => fieldRow(f, i, signature)), formError,
      predictButton);
    history.replaceState(null, "", `?model=${encodeURIComponent(model.name)}`);
  }

  // ---- predicting ----

  function predictPath(model) {
    const name = encodeURIComponent(model.name);
    const version = versionSelect.value;
    return version ? `/models/${name}/versions/${version}/predict` : `/models/${name}/predict`;
  }

  async function predict(event) {
    event.preventDefault();
    const model = current();
    const body = {};
    for (const { field, read } of state.fields) {
      const got = read();
      if (got.error) {
        formError.textContent = got.error;
        return;
      }
      body[field.name] = got.value;
    }
    formError.textContent = "";
    predictButton.disabled = true;
    const path = predictPath(model);
    const started = performance.now();
    try {
      const answer = await api(path, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const latency = performance.now() - started;
      state.answer = { model, path, body, answer, latency };
      showAnswer(state.answer);
    } catch (error) {
      formError.textContent = `The request failed: ${error.message}`;
    } finally {
      predictButton.disabled = false;
    }
  }

  function labelsOf(signature) {
    const output = signature.output || {};
    if (output.class_names && output.class_names.length) return output.class_names.map(String);
    return (signature.classes || []).map(String);
  }

  function chart(signature, json) {
    if (Array.isArray(json.top_k)) {
      return [el("h3", {}, `Top ${json.top_k.length}`),
        MP.bars(json.top_k.map((t) => ({ label: t.label, value: t.probability })),
          { title: "top classes", highlight: json.prediction })];
    }
    const labels = labelsOf(signature);
    if (!Array.isArray(json.probabilities) || json.probabilities.length !== labels.length) return [];
    return [el("h3", {}, "Probabilities"),
      MP.bars(labels.map((label, i) => ({ label, value: json.probabilities[i] })),
        { title: "class probabilities", highlight: json.prediction })];
  }

  function serverTime(headers) {
    const timing = /dur=([0-9.]+)/.exec(headers.get("server-timing") || "");
    return timing ? ` (server ${timing[1]} ms)` : "";
  }

  function showAnswer({ model, path, body, answer, latency }) {
    const json = answer.json || {};
    if (!answer.ok) {
      MP.put(answerBox, el("h2", {}, "Answer"), el("p", { class: "error", role: "alert" }, MP.problem(answer)),
        snippets(path, body));
      return;
    }
    const prediction = Array.isArray(json.prediction)
      ? `[${json.prediction.slice(0, 8).map((v) => MP.number(v)).join(", ")}` +
        `${json.prediction.length > 8 ? ", …" : ""}]`
      : MP.number(json.prediction, 4);
    const headers = answer.headers;
    const facts = [
      ["Latency", `${latency.toFixed(1)} ms${serverTime(headers)}`],
      ["Model", model.name],
      ["Version", headers.get("x-model-version") || "–"],
      ["Variant", headers.get("x-model-variant") || "–"],
      ["Request id", headers.get("x-request-id") || "–"],
    ];
    MP.put(answerBox, 
      el("h2", {}, "Answer"),
      el("p", { class: "prediction" }, el("output", { id: "prediction", for: "model" }, prediction),
        typeof json.probability === "number"
          ? el("span", { class: "probability" }, MP.percent(json.probability)) : null),
      ...chart(model.signature, json),
      el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-fact": k }, v)])),
      feedback(model, json, headers.get("x-request-id")),
      snippets(path, body));
  }

  // ---- feedback ----

  function feedback(model, json, requestId) {
    const kind = (model.signature.output || {}).kind;
    if (!requestId || Array.isArray(json.prediction)) return null;
    const result = el("p", { class: "result", role: "status" });
    let input;
    if (kind === "regression") {
      input = el("input", { id: "truth", type: "number", step: "any" });
      input.value = String(json.prediction);
    } else {
      input = el("select", { id: "truth" }, labelsOf(model.signature).map((l) => el("option", { value: l }, l)));
      input.value = String(json.prediction);
    }
    const send = el("button", { type: "button" }, "Send feedback");
    send.addEventListener("click", async () => {
      const truth = kind === "regression" ? { value: parseFloat(input.value) } : { label: input.value };
      send.disabled = true;
      const answer = await api("/feedback", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ request_id: requestId, ...truth }),
      });
      send.disabled = false;
      if (!answer.ok) {
        result.textContent = MP.problem(answer);
        return;
      }
      const correct = answer.json.correct;
      const right = correct === undefined ? "" : `: the prediction was ${correct ? "right" : "wrong"}`;
      result.textContent = `Feedback recorded (${answer.json.recorded})${right}.`;
    });
    return el("div", { class: "feedback" },
      el("h3", {}, "Feedback"),
      el("label", { for: "truth" }, kind === "regression" ? "True value" : "True label"), input, send, result);
  }

  // ---- copy as curl / Python ----

  const shellQuote = (text) => `'${text.replace(/'/g, "'\\''")}'`;

  function python(value) {
    if (value === null) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (Array.isArray(value)) return `[${value.map(python).join(", ")}]`;
    if (typeof value === "object") {
      return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${python(v)}`).join(", ")}}`;
    }
    return JSON.stringify(value);
  }

  function snippets(path, body) {
    const url = new URL(MP.root + path, location.href).href;
    const keyed = MP.keyRequired;
    const curl = [`curl -X POST ${shellQuote(url)}`, `-H 'Content-Type: application/json'`,
      keyed ? `-H "Authorization: Bearer $MODELPORT_INFERENCE_KEY"` : null,
      `-d ${shellQuote(JSON.stringify(body))}`].filter(Boolean).join(" \\\n  ");
    const py = [keyed ? "import os\n" : "", "import requests\n\n",
      `response = requests.post(\n    ${JSON.stringify(url)},\n    json=${python(body)},\n`,
      keyed ? `    headers={"Authorization": "Bearer " + os.environ["MODELPORT_INFERENCE_KEY"]},\n` : "",
      ")\nprint(response.headers[\"X-Request-Id\"], response.json())\n"].join("");
    const code = el("pre", { id: "snippet" }, el("code", {}, curl));
    const texts = { curl, Python: py };
    const tabs = Object.keys(texts).map((name) => {
      const button = el("button", { type: "button", "aria-pressed": name === "curl" ? "true" : "false" }, name);
      button.addEventListener("click", () => {
        code.firstChild.textContent = texts[name];
        for (const other of tabs) other.setAttribute("aria-pressed", String(other === button));
      });
      return button;
    });
    const copied = el("span", { role: "status" });
    const copy = el("button", { type: "button" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(code.textContent);
        copied.textContent = "copied";
      } catch (_) {
        getSelection().selectAllChildren(code);
        copied.textContent = "selected: press Ctrl+C";
      }
    });
    return el("div", { class: "snippet" }, el("h3", {}, "This request"),
      el("div", { class: "tabs" }, ...tabs, copy, copied), code);
  }

  // ---- the page ----

  async function load() {
    const answer = await api("/models");
    if (!answer.ok) {
      MP.put(app, el("p", { class: "error", role: "alert" }, MP.problem(answer)));
      return;
    }
    state.models = answer.json.models;
    if (!state.models.length) {
      MP.put(app, el("p", {}, "This server has no model."));
      return;
    }
    MP.put(modelSelect, ...state.models.map((m) => el("option", { value: m.name }, m.name)));
    const wanted = new URLSearchParams(location.search).get("model");
    const chosen = state.models.find((m) => m.name === wanted) ||
      state.models.find((m) => m.default) || state.models[0];
    modelSelect.value = chosen.name;
    MP.put(app, 
      el("section", { class: "ask" },
        MP.keyField(),
        el("div", { class: "choose" },
          el("div", { class: "field" }, el("label", { for: "model" }, "Model"), modelSelect),
          el("div", { class: "field" }, el("label", { for: "version" }, "Version"), versionSelect)),
        about, statusLink, form),
      answerBox);
    showModel();
  }

  MP.header("Playground");
  modelSelect.addEventListener("change", () => {
    MP.put(answerBox);
    showModel();
  });
  form.addEventListener("submit", predict);
  load();
})();
