"""The recipe framework: a recipe is an experiment (jobs to train), a measurement (tables)
and a declarative spec (claims, checks, figures, sections) evaluated on those tables.

See ``docs/writing-a-recipe.md``.
"""

from iclab.framework._executors import Executor as Executor
from iclab.framework._executors import ShardFailed as ShardFailed
from iclab.framework._executors import train_shard as train_shard
from iclab.framework._pack import pack_jobs as pack_jobs
from iclab.framework._recipe import Job as Job
from iclab.framework._recipe import Recipe as Recipe
from iclab.framework._recipe import TrainedJob as TrainedJob
from iclab.framework._recipe import get_recipe as get_recipe
from iclab.framework._recipe import recipes as recipes
from iclab.framework._recipe import train_jobs as train_jobs
from iclab.framework._report import evaluate_rows as evaluate_rows
from iclab.framework._report import load_results as load_results
from iclab.framework._report import read_tables as read_tables
from iclab.framework._report import render as render
from iclab.framework._report import write_tables as write_tables
from iclab.framework._run import accepts_model as accepts_model
from iclab.framework._run import execute as execute
from iclab.framework._run import machine as machine
from iclab.framework._run import make_config as make_config
from iclab.framework._run import prepare as prepare
from iclab.framework._run import run as run
from iclab.framework._spec import Claim as Claim
from iclab.framework._spec import Figure as Figure
from iclab.framework._spec import MissingTable as MissingTable
from iclab.framework._spec import Results as Results
from iclab.framework._spec import Section as Section
from iclab.framework._spec import Source as Source
from iclab.framework._spec import evaluate as evaluate
from iclab.framework._spec import mean_interval as mean_interval
from iclab.framework._spec import paper as paper
from iclab.framework._spec import reference as reference
from iclab.framework._tables import curve_table as curve_table
from iclab.framework._tables import matrix_table as matrix_table
from iclab.framework._tables import table_matrix as table_matrix

__all__ = [  # the public API (what the docs site renders)
    "Executor",
    "ShardFailed",
    "train_shard",
    "pack_jobs",
    "Job",
    "Recipe",
    "TrainedJob",
    "get_recipe",
    "recipes",
    "train_jobs",
    "evaluate_rows",
    "load_results",
    "read_tables",
    "render",
    "write_tables",
    "accepts_model",
    "execute",
    "machine",
    "make_config",
    "prepare",
    "run",
    "Claim",
    "Figure",
    "MissingTable",
    "Results",
    "Section",
    "Source",
    "evaluate",
    "mean_interval",
    "paper",
    "reference",
    "curve_table",
    "matrix_table",
    "table_matrix",
]
