"""Recipes: one module per paper claim-set, each exposing ``RECIPE`` (an
``iclab.framework.Recipe``). The registry discovers them: ``iclab.list_recipes()`` or
``iclab list``. A recipe uses only the public API and imports no other recipe.
"""
