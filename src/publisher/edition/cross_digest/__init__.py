"""The cross-post FAQ digest (`publish digest`): many posts' FAQs merged, written as a post."""
