"""The literature-review stage: what is known about an idea, from the literature cascade."""
