"""The analyst's web console under ``/ui/``: pages for the people on call.

``mount.install`` puts it into the app. ``sessions`` (the signed session cookie, and who a
console identity is to the API), ``csrf``, ``access`` (the signed-in person of each request)
and ``headers`` (the Content-Security-Policy) are its defences; ``signin`` (API token) and
``oidc`` (the identity provider) sign people in; ``routes`` (reading pages) and ``decisions``
(approve, reject, roll back) are thin routers over ``views``, which shapes what the API's own
service functions and wire models return; ``templates/`` and ``static/`` are its pages and
assets, served by Riposte alone.
"""
