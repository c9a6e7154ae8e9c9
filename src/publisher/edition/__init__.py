"""Article → Edition, pure: the newsletter, the social posts and the FAQ digest."""
