/* Unit tests of the scenario loader (harness/scenario.c): every refusal is
 * one line naming FILE:LINE:COLUMN and the field; unknown keys and enum
 * values are refused; numbers, modes and durations are parsed strictly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scenario.h"

static const char base[] =
	"name: t\n"
	"steps:\n"
	"  - sh: 'true'\n";

/* Loads TEXT as "t.yaml" and checks it is refused with ERR starting with
 * WANT (and being one line). */
static void refused(const char *text, const char *want)
{
	struct scenario *sc = NULL;
	char err[1024] = "";
	int rc = scenario_load_buffer("t.yaml", text, strlen(text), &sc, err, sizeof(err));

	if (rc == 0 || strncmp(err, want, strlen(want)) != 0)
		fail_msg("for:\n%s\nwanted an error starting with\n  %s\ngot rc %d:\n  %s", text, want, rc, err);
	assert_null(strchr(err, '\n'));
	assert_null(sc);
}

static struct scenario *loaded(const char *text)
{
	struct scenario *sc = NULL;
	char err[1024] = "";

	if (scenario_load_buffer("t.yaml", text, strlen(text), &sc, err, sizeof(err)) != 0)
		fail_msg("for:\n%s\nunexpected error: %s", text, err);
	return sc;
}

static void test_minimal(void **state)
{
	struct scenario *sc = loaded(base);

	(void)state;
	assert_string_equal(sc->name, "t");
	assert_int_equal(sc->steps_count, 1);
	assert_int_equal(sc->steps[0].kind, SK_SH);
	assert_string_equal(sc->steps[0].label, "sh");
	assert_int_equal(sc->world->container, SC_CT_NONE);
	scenario_free(sc);
}

static void test_full(void **state)
{
	static const char text[] =
		"name: full\n"
		"tags: [a, b-c]\n"
		"requires: [fuse, python]\n"
		"timeout: 90s\n"
		"world:\n"
		"  container: kubernetes\n"
		"  mounts:\n"
		"    tmp:\n"
		"      rules:\n"
		"        - op=exec,path=**,error=EACCES\n"
		"        - {op: [rmdir, rename], path: venv, error: EBUSY}\n"
		"      options: noexec\n"
		"    plain:\n"
		"  env: {A: '1', B_2: two}\n"
		"  settings:\n"
		"    RUNNER_DIR: '{{mount.tmp}}/r'\n"
		"  files:\n"
		"    - {path: job.py, content: 'print(1)', mode: '0640'}\n"
		"steps:\n"
		"  - upload: job.py\n"
		"  - exec: '{{upload.id}}'\n"
		"    name: run1\n"
		"    timeout: 5s\n"
		"    detach: true\n"
		"    expect:\n"
		"      status: COMPLETED\n"
		"      exit_code: 0\n"
		"      logs: {contains: x, lines: 2}\n"
		"      faults: [{mount: tmp, count: 0}]\n"
		"      files: {present: [a], absent: [b], modes: [{path: c, mode: '0750'}]}\n"
		"      duration: {max: 2s}\n"
		"  - wait: '{{run1.id}}'\n";
	struct scenario *sc = loaded(text);

	(void)state;
	assert_int_equal(sc->timeout_ns, 90ull * 1000000000ull);
	assert_int_equal(sc->world->container, SC_CT_KUBERNETES);
	assert_int_equal(sc->world->mounts_count, 2);
	assert_string_equal(sc->world->mounts[0].name, "tmp");
	assert_int_equal(sc->world->mounts[0].rules_count, 2);
	assert_string_equal(sc->world->mounts[0].rules[1], "op=rmdir|rename,path=venv,error=EBUSY");
	assert_string_equal(sc->world->mounts[0].options, "noexec");
	assert_string_equal(sc->world->mounts[1].name, "plain");
	assert_int_equal(sc->world->env_count, 2);
	assert_string_equal(sc->world->env[1].key, "B_2");
	assert_string_equal(sc->world->settings[0].value, "{{mount.tmp}}/r");
	assert_true(sc->world->files[0].has_mode);
	assert_int_equal(sc->world->files[0].mode_v, 0640);
	assert_int_equal(sc->steps[1].kind, SK_EXEC);
	assert_true(sc->steps[1].detach_v);
	assert_int_equal(sc->steps[1].timeout_ns, 5000000000ull);
	assert_int_equal(*sc->steps[1].expect->status, SC_ST_COMPLETED);
	assert_true(sc->steps[1].expect->has_exit_code);
	assert_int_equal(sc->steps[1].expect->logs->nlines, 2);
	assert_true(sc->steps[1].expect->faults[0].has_count);
	assert_int_equal(sc->steps[1].expect->files->modes[0].mode_v, 0750);
	assert_int_equal(sc->steps[1].expect->duration->max_ns, 2000000000ull);
	assert_true(scenario_has_tag(sc, "b-c"));
	assert_false(scenario_has_tag(sc, "c"));
	{
		struct sc_pos p = scenario_pos(sc, "steps.1.expect.status");

		assert_int_equal(p.line, 26);
		assert_int_equal(p.col, 15);
	}
	scenario_free(sc);
}

static void test_unknown_keys(void **state)
{
	(void)state;
	refused("name: t\nbogus: 1\nsteps:\n  - sh: x\n", "t.yaml:2:1: field 'bogus': unknown key");
	refused("name: t\nworld:\n  container: none\n  extra: 1\nsteps:\n  - sh: x\n",
		"t.yaml:4:3: field 'world.extra': unknown key");
	refused("name: t\nsteps:\n  - sh: x\n  - sh: y\n    expekt: {}\n",
		"t.yaml:5:5: field 'steps.1.expekt': unknown key");
	refused("name: t\nsteps:\n  - sh: x\n    expect:\n      stdout: {contain: x}\n",
		"t.yaml:5:16: field 'steps.0.expect.stdout.contain': unknown key");
	refused("name: t\nworld:\n  mounts:\n    m: {rulez: []}\nsteps:\n  - sh: x\n",
		"t.yaml:4:9: field 'world.mounts.m.rulez': unknown key");
}

static void test_enums_strict(void **state)
{
	(void)state;
	refused("name: t\nworld:\n  container: dockr\nsteps:\n  - sh: x\n",
		"t.yaml:3:14: field 'world.container': invalid value 'dockr'");
	refused("name: t\nworld:\n  container: 1\nsteps:\n  - sh: x\n",
		"t.yaml:3:14: field 'world.container': invalid value '1'");
	refused("name: t\nsteps:\n  - exec: '1'\n    expect: {status: DONE}\n",
		"t.yaml:4:22: field 'steps.0.expect.status': invalid value 'DONE'");
	refused("name: t\nrequires: [fuse, gpu]\nsteps:\n  - sh: x\n", "t.yaml:2:");
}

static void test_numbers_strict(void **state)
{
	(void)state;
	refused("name: t\nsteps:\n  - sh: x\n    expect: {exit_code: 12abc}\n",
		"t.yaml:4:25: field 'steps.0.expect.exit_code': invalid number '12abc'");
	refused("name: t\nsteps:\n  - sh: x\n    expect: {exit_code: 256}\n",
		"t.yaml:4:25: field 'steps.0.expect.exit_code': exit codes are 0 to 255");
	refused("name: t\nsteps:\n  - sh: x\n    expect: {exit_code: -1}\n",
		"t.yaml:4:25: field 'steps.0.expect.exit_code': invalid number '-1'");
	refused("name: t\nsteps:\n  - sh: x\n    timeout: 5 s\n",
		"t.yaml:4:14: field 'steps.0.timeout': invalid duration '5 s'");
	refused("name: t\ntimeout: 1x\nsteps:\n  - sh: x\n", "t.yaml:2:10: field 'timeout': invalid duration '1x'");
	refused("name: t\nworld:\n  files:\n    - {path: a, mode: '0999'}\nsteps:\n  - sh: x\n",
		"t.yaml:4:23: field 'world.files.0.mode': invalid mode '0999'");
	refused("name: t\nsteps:\n  - sh: x\n    expect: {stdout: {lines: 3x}}\n",
		"t.yaml:4:30: field 'steps.0.expect.stdout.lines': invalid number '3x'");
	refused("name: t\nsteps:\n  - exec: '1'\n    detach: maybe\n",
		"t.yaml:4:13: field 'steps.0.detach': expected true or false");
	refused("name: t\nsteps:\n  - sleep: soon\n", "t.yaml:3:12: field 'steps.0.sleep': invalid duration 'soon'");
}

static void test_steps(void **state)
{
	(void)state;
	refused("name: t\nsteps:\n  - timeout: 1s\n", "t.yaml:3:5: field 'steps.0': a step needs one of");
	refused("name: t\nsteps:\n  - sh: x\n    exec: y\n", "t.yaml:3:5: field 'steps.0.sh': a step has one kind; 'exec' also given");
	refused("name: t\nsteps:\n  - sh: x\n    regex: y\n",
		"t.yaml:4:5: field 'steps.0.regex': not used by a 'sh' step");
	refused("name: t\nsteps:\n  - venv: rebuild\n",
		"t.yaml:3:11: field 'steps.0.venv': expected ensure, recreate or status");
	refused("name: t\nsteps:\n  - fault: nope\n    add: x\n",
		"t.yaml:3:12: field 'steps.0.fault': no mount named 'nope'");
	refused("name: t\nsteps:\n  - wait_log: '1'\n", "t.yaml:3:5: field 'steps.0': a wait_log step needs regex");
	refused("name: t\nsteps:\n  - kill: '1'\n    signal: BOOM\n",
		"t.yaml:4:13: field 'steps.0.signal': unknown signal 'BOOM'");
	refused("name: t\nsteps:\n  - exec: '1'\n    env: [NOEQUALS]\n",
		"t.yaml:4:11: field 'steps.0.env.0': expected NAME=value");
	refused("name: t\nsteps:\n  - sh: x\n    expect: {stdout: {regex: '('}}\n",
		"t.yaml:4:30: field 'steps.0.expect.stdout.regex': invalid regular expression");
	refused("name: t\nsteps:\n", "t.yaml:");
	refused("steps:\n  - sh: x\n", "t.yaml:1:1: field 'name': required field missing");
}

static void test_references(void **state)
{
	(void)state;
	refused("name: t\nsteps:\n  - exec: '{{upload.id}}'\n",
		"t.yaml:3:11: field 'steps.0.exec': unknown reference '{{upload.id}}': no earlier step");
	refused("name: t\nsteps:\n  - sh: 'echo {{mount.tmp}}'\n",
		"t.yaml:3:9: field 'steps.0.sh': unknown reference '{{mount.tmp}}': no mount 'tmp'");
	refused("name: t\nsteps:\n  - sh: 'echo {{world.nothing}}'\n",
		"t.yaml:3:9: field 'steps.0.sh': unknown reference '{{world.nothing}}'");
	refused("name: t\nsteps:\n  - upload: a\n  - sh: 'echo {{upload.size}}'\n",
		"t.yaml:4:9: field 'steps.1.sh': unknown reference '{{upload.size}}'");
	refused("name: t\nsteps:\n  - sh: 'echo {{oops'\n", "t.yaml:3:9: field 'steps.0.sh': '{{' without");
	/* A step's expectations may use its own id; later steps may not be used. */
	scenario_free(loaded("name: t\nsteps:\n  - upload: a\n    expect: {stdout: {contains: '{{upload.id}}'}}\n"));
	refused("name: t\nsteps:\n  - sh: '{{later.id}}'\n  - upload: a\n    name: later\n",
		"t.yaml:3:9: field 'steps.0.sh': unknown reference");
	/* File content is written as it is. */
	scenario_free(loaded("name: t\nworld:\n  files:\n    - {path: a, content: '{{x}}'}\nsteps:\n  - sh: x\n"));
}

static void test_yaml_errors(void **state)
{
	(void)state;
	refused("name: t\nsteps:\n  - sh: \"x\n", "t.yaml:4:1: YAML syntax error");
	refused("name: &a t\nsteps:\n  - sh: *a\n", "t.yaml:3:9: aliases are not supported");
	refused("name: t\nname: u\nsteps:\n  - sh: x\n", "t.yaml:2:1: field 'name': duplicate key");
	refused("- a\n- b\n", "t.yaml:1:1: a scenario is a mapping");
	refused("name: t\nsteps:\n  - sh: x\n---\nname: u\n", "t.yaml:4:1: a scenario file holds one YAML document");
	refused("name: t\nworld:\n  env: {1BAD: x}\nsteps:\n  - sh: x\n",
		"t.yaml:3:9: field 'world.env.1BAD': '1BAD' is not a variable name");
	refused("name: t\nworld:\n  files:\n    - {path: ../x}\nsteps:\n  - sh: x\n",
		"t.yaml:4:14: field 'world.files.0.path': a world file is a relative path");
}

static void test_load_file_errors(void **state)
{
	struct scenario *sc = NULL;
	char err[512];

	(void)state;
	assert_int_equal(scenario_load("/nonexistent/x.yaml", &sc, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/x.yaml: cannot open: No such file or directory");
	assert_true(scenario_load("/", &sc, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_enums_strict),
		cmocka_unit_test(test_numbers_strict),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_references),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_load_file_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
