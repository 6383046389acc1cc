# cmd.sh: how run.sh runs its jobs, as in ESPnet's recipes (run.sh sources it after its options).
#   train_cmd   trainings: the dense model, the dense control, each compression run of a sweep
#   cuda_cmd    the same on GPUs (run.sh passes --gpu N)
#   decode_cmd  decoding jobs (split decoding: one job per part)
# run.sh --cmd_backend chooses (or change the default in run.sh):
#   local   this machine, --nj jobs at a time (the cores shared out as torch threads)
#   slurm   sbatch job arrays, --nj at a time; partition, time, memory, CPUs and GPUs per job in
#           --slurm_conf (Kaldi's and ESPnet's conf/slurm.conf format)
# Both are pinch.jobs, with run.pl's and slurm.pl's command line:
#   ${train_cmd} [--option value ...] [JOB=1:N] LOG COMMAND...
case "${cmd_backend}" in
    local) train_cmd="${python} -m pinch.jobs local" ;;
    slurm) train_cmd="${python} -m pinch.jobs slurm --config ${slurm_conf}" ;;
esac
cuda_cmd="${train_cmd}"
decode_cmd="${train_cmd}"
