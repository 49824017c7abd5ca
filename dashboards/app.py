"""keelwatch dashboards (Streamlit): drift over time, latest run, traffic and alerts per model.

Run with ``keelwatch dashboard`` (or ``streamlit run`` on this file); it reads the store through
the server at ``KEELWATCH_ENDPOINT``.
"""

from __future__ import annotations

import altair as alt
import streamlit as st

from keelwatch.dashboards import _data as data


def over_time(frame: object, y: str, title: str, color: str, tooltip: list[str]) -> alt.Chart:
    """A line per ``color`` value of ``y`` against the window end."""
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("window_end:T", title="window end", axis=alt.Axis(format="%b %d %H:%M:%S")),
            y=alt.Y(f"{y}:Q", title=title),
            color=f"{color}:N",
            tooltip=tooltip,
        )
    )


st.set_page_config(page_title="keelwatch", layout="wide")
st.title("keelwatch")

try:
    client = data.connect()
    model_names = data.models(client)
except Exception as exc:  # the page must explain, not crash, when the server is away
    st.error(f"Cannot read the keelwatch store: {exc}")
    st.stop()

if not model_names:
    st.info("No models yet: register a baseline and send predictions (see `keelwatch demo`).")
    st.stop()

model = st.sidebar.selectbox("Model", model_names)
scope = st.sidebar.selectbox("Scope", data.scopes(client, model), format_func=data.scope_label)
history = data.drift_history(client, model, scope)
traffic = data.volume(client, model)

total = int(traffic["predictions"].sum()) if not traffic.empty else 0
errors = int(traffic["errors"].sum()) if not traffic.empty else 0
col1, col2, col3 = st.columns(3)
col1.metric("Predictions", f"{total:,}")
col2.metric("Errors", f"{errors:,}")
col3.metric("Detector runs", history["window_end"].nunique() if not history.empty else 0)

st.header("Drift over time")
if history.empty:
    st.info("No detector results yet for this model.")
else:
    deciding = "deciding method per feature"
    methods = [deciding, *sorted(history["method"].unique())]
    method = st.selectbox("Method", methods)
    if method == deciding:
        chosen = history[history["deciding"] == 1]
    else:
        chosen = history[history["method"] == method]
    tooltip = ["feature", "method", "score", "threshold", "drifted", "n_current"]
    line = over_time(chosen, "score", "score", "feature", tooltip)
    rule = alt.Chart(chosen).mark_rule(strokeDash=[4, 4], color="red").encode(y="mean(threshold):Q")
    st.altair_chart(line + rule, use_container_width=True)

    st.subheader("Latest run")
    latest = data.latest_run(client, model, scope)
    drifted = sorted(set(latest.loc[latest["drifted"] == 1, "feature"]))
    st.write(f"Drifted features: {', '.join(drifted) if drifted else 'none'}")
    st.dataframe(
        latest,
        hide_index=True,
        column_config={
            "score": st.column_config.NumberColumn(format="%.4g"),
            "p_value": st.column_config.NumberColumn(format="%.3g"),
            "p_adjusted": st.column_config.NumberColumn(format="%.3g"),
        },
    )

st.header("Quality, operations and performance over time")
others = data.detector_history(client, model, scope)
if others.empty:
    st.info("No results beside drift yet (the server stores them with each scheduled run).")
else:
    metric = st.selectbox("Metric", sorted(others["metric"].unique()))
    picked = others[others["metric"] == metric]
    chart = over_time(picked, "value", metric, "subject", ["subject", "value"])
    st.altair_chart(chart, use_container_width=True)

st.header("Traffic")
if not traffic.empty:
    st.line_chart(traffic, x="minute", y=["predictions", "errors"])
    st.line_chart(traffic, x="minute", y=["p50_ms", "p99_ms"])

st.header("Alerts")
fired = data.alerts(client, model)
if fired.empty:
    st.write("No alerts fired.")
else:
    st.dataframe(fired, hide_index=True)
