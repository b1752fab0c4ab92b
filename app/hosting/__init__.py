"""Team hosting: the instance's config file, its users and who may reach what.

``config``   the TOML file ``classmap serve --config FILE`` reads (models, data roots,
             cache, limits, users, proxy and Host settings) and ``classmap user`` edits
``access``   the request guard every route passes through (authentication, roles,
             request limits, Host names, security headers) and the Flask secret key
"""
