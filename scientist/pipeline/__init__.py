"""The paper pipeline: ideas → experiments → write-up → review, resumable, per idea isolated."""
