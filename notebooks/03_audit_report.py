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
# # 03 · Audit report
#
# What recon changed in the CRMs: per apply run, per object and field, how many
# writes were confirmed or failed, and whether the audit's hash chain still
# verifies (no row edited, deleted or cut off).

# %%
import altair as alt
import polars as pl

import recon

cfg = recon.load_config()
db = recon.open_store(cfg.store.path, create=False)  # no store here: say so

# %%
runs = recon.runs_frame(db, "apply")  # every apply run, oldest first
runs

# %%
report = recon.audit_report(db)
report

# %%
per_field = (
    report.group_by(["crm", "object", "field"])
    .agg(pl.col("changes").sum())
    .sort("changes", descending=True)
)
alt.Chart(per_field.to_pandas()).mark_bar().encode(
    x="changes:Q",
    y=alt.Y("field:N", sort="-x", title=None),
    color="crm:N",
    tooltip=["crm", "object", "field", "changes"],
).properties(title="Writes per field")

# %%
outcomes = report.group_by(["run_id", "outcome"]).agg(pl.col("changes").sum()).sort("run_id")
outcomes

# %% [markdown]
# ## Chain verification
# Recomputes every row's hash from the one before it; the anchor printed in each run
# summary also detects rows cut off the end.

# %%
verification = recon.verify_audit(db)
verification
