"""Callback modules; each provides ``register(app, services)``.

``classmap.app.server.create_app`` registers every module in this package (files starting with
``_`` excepted), so a new page's callbacks join by adding one module here.
"""
