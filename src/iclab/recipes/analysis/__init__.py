"""The analysis half of each recipe: how its tables are read (for claims, figures and report
sections) and drawn. One module per recipe, named like it; none trains anything, so
``iclab report RUN`` can run them on a finished run folder."""
