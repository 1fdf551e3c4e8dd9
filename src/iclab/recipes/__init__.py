"""Recipes: one per paper claim-set. ``iclab list`` shows them."""

from iclab.recipes._base import Recipe as Recipe
from iclab.recipes._base import get_recipe as get_recipe
from iclab.recipes._base import recipes as recipes
from iclab.recipes._claims import Claim as Claim
from iclab.recipes._claims import check as check
