"""Writers: Markdown, LaTeX and PDF sheets, built from derivations."""
