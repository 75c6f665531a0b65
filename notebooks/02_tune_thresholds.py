# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Tune match thresholds from review decisions
#
# Every link a reviewer labelled `match` or `non_match` in the review app is a
# label. This notebook measures, for a grid of thresholds, the precision and
# recall of "link every pair scoring at least t", from those human decisions only
# (the headless policy's own approvals never grade themselves), and suggests the
# lowest threshold that keeps precision at the target. The grid starts at the lowest
# score a person labelled: nothing below the review threshold is ever shown to one.

# %%
import altair as alt
import polars as pl

import recon

cfg = recon.load_config()
db = recon.open_store(cfg.store.path, create=False)  # no store here: say so
TARGET_PRECISION = 0.99

# %%
labels = recon.label_counts(db, "link")  # reviewers' current link decisions
labels

# %%
curve = recon.threshold_curve(db)
curve

# %%
long = curve.unpivot(
    index="threshold", on=["precision", "recall", "f1"], variable_name="measure", value_name="value"
).drop_nulls()
alt.Chart(long.to_pandas()).mark_line(point=True).encode(
    x=alt.X("threshold:Q", scale=alt.Scale(zero=False)),
    y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1])),
    color="measure:N",
).properties(title="Precision and recall per threshold (human labels)")

# %% [markdown]
# ## Suggested threshold
# The lowest threshold whose measured precision reaches the target (the most links
# an unattended run can take at that precision), and the one with the best F1. A pair
# a veto keeps out of `auto` (a clearly different name, another country) stays out of it
# whatever the threshold.

# %%
meeting = curve.filter(pl.col("precision") >= TARGET_PRECISION).sort("threshold")
suggested = meeting["threshold"][0] if meeting.height else None
best_f1 = curve.drop_nulls("f1").sort("f1", descending=True).head(1)
{"suggested_auto_threshold": suggested, "best_f1": best_f1.to_dicts()}
