"""The review stage: PDF text, the review form, reviewers with reflection, the ensemble and
meta-review, the decision and the report. It never imports graphs, a CLI or scientist."""
