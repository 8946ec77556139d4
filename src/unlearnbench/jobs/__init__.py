"""What one Snakemake job does, by stage (workflow/scripts/*.py are thin adapters over these).

  context.py    the data, device and precision a job runs on (DeviceContext, Context)
  reference.py  splits, initialisations, the original and retrained models
  search.py     one hyperparameter study, the choice over its seeds
  unlearn.py    the final unlearning runs with the chosen hyperparameters
  method.py     search, choice and final runs of one method in one job (search.one_job)
  ulira.py      U-LiRA: split design, ShadowContext, shadow models, their unlearning, its search
  ulira_attack.py  U-LiRA's attack on one kind's logit banks (no torch)

Each job function takes plain paths and values (no Snakemake object) and writes its
outputs atomically, so a killed job leaves nothing under a real output name. The
submodules are not imported here: the light ones (search's select_best_job, the
U-LiRA attack) stay free of torch.
"""
