"""A post file or URL → Article: front matter, Markdown, sanitizing, blocks, language, FAQ."""
