# Airflow's image with the project's pinned runtime requirements (the versions the tests ran) and the Moodle
# provider (plugins/moodle), for docker-compose.yaml. Runtime only: the test, lint and type-check tools of
# requirements-dev.txt stay out.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
COPY plugins/moodle /tmp/moodle-provider
RUN pip install --no-cache-dir --no-deps /tmp/moodle-provider
