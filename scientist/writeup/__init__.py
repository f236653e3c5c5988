"""Write-up stage: per-section LaTeX, citations, compile-and-fix."""
