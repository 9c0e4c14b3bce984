-- Why a partition stopped (an error that needs an operator: a poison record
-- under errors.tolerance none, a target table missing), written by its
-- owner when it stops and cleared by the next claim, so that `pgsink status`
-- shows it from any machine.
ALTER TABLE offsets ADD COLUMN stopped_reason text, ADD COLUMN stopped_at timestamptz;
