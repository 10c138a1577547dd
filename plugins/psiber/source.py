"""PSIber as the users flow's source of employees, as the flow's messages name it (light: DAG files import it)."""

from __future__ import annotations

from psiber.config import OWNER_PSIBER_HR
from sync_common.employee_source import EmployeeSource

PSIBER = EmployeeSource(name="PSIber", owner=OWNER_PSIBER_HR,
                        unnamed="PSIber employee row #{employee_id} (no employee number)",
                        left="employee is no longer in the integration's payrolls",
                        gone="employee record was deleted from PSIber",
                        gone_record="PSIber employee row #{employee_id} (deleted)")
