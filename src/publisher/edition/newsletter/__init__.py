"""The newsletter: MJML and HTML, its plain-text twin, its words and placeholders."""
