"""The pages modelport serves to people: the playground at ``/``, a status page per model, and
the API documentation (Swagger UI at ``/docs``, ReDoc at ``/redoc``), every asset served by
modelport itself.

:mod:`.assets` reads the files (the playground's own small, hand-written JS and CSS from this
package; Swagger UI and ReDoc from the ``fastapi-offline`` package) and :mod:`.pages` writes the
HTML shells and their headers. The pages hold no data: their scripts read the server's own JSON
routes (``/models``, ``/ui/status/<model>``, ``/experiments/<model>``) and build the page with
DOM calls, so a model's name or description is text, never markup. The routes live in
:mod:`modelport.protocols.pages`.
"""
