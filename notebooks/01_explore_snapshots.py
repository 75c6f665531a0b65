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
# # 01 · Explore the two snapshots
#
# What did recon pull from HubSpot and Salesforce? Fill rates of the fields that
# matching and syncing rely on, how many records carry a usable company domain
# (free-mail domains such as gmail.com don't count), and a first estimate of the
# duplicates inside each system from cheap keys, next to what the latest match run
# found. The notebook uses only recon's public API and reads the store named by
# `$RECON_CONFIG` (else `./recon.toml`).

# %%
import altair as alt
import polars as pl

import recon

cfg = recon.load_config()
db = recon.open_store(cfg.store.path, create=False)  # no store here: say so
status = recon.status_report(db)
pl.DataFrame(status["records"])

# %% [markdown]
# ## Fill rates
# Share of records with a value, per source object and field.

# %%
records = recon.records_frame(db)
fills = recon.fill_rates(records)
fills.pivot(on="column", index=["source", "object"], values="rate")

# %%
alt.Chart(fills.to_pandas()).mark_rect().encode(
    x=alt.X("column:N", title=None),
    y=alt.Y("object:N", title=None),
    color=alt.Color("rate:Q", scale=alt.Scale(domain=[0, 1])),
    tooltip=["source", "object", "column", "filled", "records", "rate"],
).properties(title="Fill rate per field")

# %% [markdown]
# ## Domain coverage
# Companies are matched on name and domain; contacts' companies also through their
# email domain. Records without a usable domain lean on the name alone.

# %%
coverage = recon.domain_coverage(db)
coverage

# %%
alt.Chart(coverage.to_pandas()).mark_bar().encode(
    x=alt.X("coverage:Q", scale=alt.Scale(domain=[0, 1])),
    y=alt.Y("object:N", title=None),
    color="source:N",
    tooltip=["source", "object", "records", "with_domain", "coverage"],
).properties(title="Records with a usable company domain")

# %% [markdown]
# ## Duplicates inside each system
# A cheap estimate (shared cleaned domain or normalised name for companies, shared
# email for people) beside the duplicate clusters of the latest match run, both per
# source object. HubSpot keeps contact emails unique, so the email key finds no HubSpot
# contact duplicates; the match run's fuzzy comparisons do.

# %%
duplicates = recon.duplicate_estimate(db)
duplicates

# %%
clusters = recon.cluster_counts(db)  # the latest match run's duplicate clusters
clusters

# %%
alt.Chart(duplicates.to_pandas()).mark_bar().encode(
    x=alt.X("duplicate_share:Q", title="share of records that duplicate another"),
    y=alt.Y("object:N", title=None),
    color="source:N",
).properties(title="Estimated duplicates per source object")
