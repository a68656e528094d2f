"""A tiny PyFlink Table API job for the tests: datagen into blackhole."""

from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.execute_sql("CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10')")
t_env.execute_sql("CREATE TABLE snk (id BIGINT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO snk SELECT id FROM src")
