"""agents layer of PowerTrip (architecture.md §2): stable-baselines3 agents on the PowerTrip env.

* :mod:`agents.config`: :class:`~agents.config.TrainConfig` and the per-algorithm
  hyperparameter dataclasses (defaults in ``agents/hyperparams/{ppo,sac,td3}.yaml``);
* :mod:`agents.episodes`: how a training episode starts and is scored (day seed from the
  training range, per-episode weight, scalar reward), batch-first, for both backends;
* :mod:`agents.envs`: the training env stack (held-out-safe day sampling, ``LinearReward``
  or the weight-conditioned wrapper, action rescaling, vector env, VecNormalize);
* :mod:`agents.batched`: the same training copies as rows of one ``BatchedPowerTripEnv``;
* :mod:`agents.actions`: policy outputs in [-1, 1] to the env's fractions;
* :mod:`agents.models`: SB3 models per algorithm, run-folder files and checkpoints;
* :mod:`agents.callbacks`: checkpoints, held-out evaluation, the resumable CSV log;
* :mod:`agents.policy`: :class:`~agents.policy.AgentController`, a trained agent behind the
  ``act(SimState) -> kW`` controller interface, with batched inference;
* :mod:`agents.evaluation`: controllers on days, normalised weighted day cost.

Training runs, sweeps, resume and evaluation with run folders live in
``experiments/train.py`` (``powertrip train`` / ``powertrip evaluate``). Importing this
package is light; the submodules import torch and stable-baselines3.
"""
