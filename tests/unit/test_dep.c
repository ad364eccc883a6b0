/* Unit tests for keys/dep.c: DEP and tree record codecs (round trip, every
 * corruption and forgery rejected), the record store (atomic save, file
 * name bound to the record ID), the DEP key unwrap rules (denied, fallback
 * to the availability key only when every customer key is unavailable)
 * and the small parsers. Real volumes and file: keys in temp dirs. */
#include "tests/unit/ck_test.h"
#include "keys/dep.h"
#include "keys/keyfile.h"
#include "keys/provider.h"
#include "keys/volume.h"

struct fix {
	char *dir, *vol, *keys;
	struct ck_volume v;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char msg[512];

	f->dir = ck_test_tmpdir("dep");
	f->vol = ck_test_path(f->dir, "vol");
	f->keys = ck_test_path(f->dir, "keys");
	assert_int_equal(ck_volume_create(f->vol, f->keys, 0, msg, sizeof(msg)), 0);
	assert_int_equal(ck_volume_open(f->vol, f->keys, &f->v, msg, sizeof(msg)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	ck_volume_close(&f->v);
	ck_test_rm_rf(f->dir);
	free(f->dir);
	free(f->vol);
	free(f->keys);
	free(f);
	return 0;
}

static void uri_of(const struct fix *f, const char *name, char *out, size_t n)
{
	snprintf(out, n, "file:%s/%s.key", f->keys, name);
}

/* A DEP with two file: customer keys and a file: availability key. */
static void make_dep(struct fix *f, struct ck_dep *d, const char *name, uint8_t key[CK_KEY_LEN])
{
	static const char *const roles[] = { "c1", "c2", "av" };
	char msg[256], uri[CK_URI_MAX], kn[64];

	memset(d, 0, sizeof(*d));
	assert_int_equal(ck_random(d->id, CK_ID_LEN), 0);
	assert_int_equal(ck_random(key, CK_KEY_LEN), 0);
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->state = CK_DEP_ACTIVE;
	d->created = d->changed = 1234;
	d->generation = 1;
	for (int i = 0; i < 3; i++) {
		struct ck_wrap *w = &d->wraps[d->n_wraps++];
		size_t len = 0;
		snprintf(kn, sizeof(kn), "%s-%s", name, roles[i]);
		uri_of(f, kn, uri, sizeof(uri));
		assert_int_equal(ck_key_create_uri(uri, msg, sizeof(msg)), 0);
		assert_int_equal(ck_key_wrap_uri(uri, key, CK_KEY_LEN, w->wrapped, &len, msg, sizeof(msg)), 0);
		w->len = (uint16_t)len;
		w->role = i < 2 ? CK_ROLE_CUSTOMER : CK_ROLE_AVAILABILITY;
		snprintf(w->uri, sizeof(w->uri), "%s", uri);
	}
}

static void dep_record_round_trips(void **state)
{
	struct fix *f = *state;
	struct ck_dep d, back;
	uint8_t key[CK_KEY_LEN], *buf;
	size_t n;

	make_dep(f, &d, "contoso", key);
	assert_int_equal(ck_dep_encode(&f->v, &d, &buf, &n), 0);
	assert_int_equal(ck_dep_decode(&f->v, buf, n, &back), 0);
	assert_string_equal(back.name, "contoso");
	assert_memory_equal(back.id, d.id, CK_ID_LEN);
	assert_int_equal(back.n_wraps, 3);
	assert_int_equal(back.wraps[2].role, CK_ROLE_AVAILABILITY);
	assert_memory_equal(back.wraps[0].wrapped, d.wraps[0].wrapped, d.wraps[0].len);
	free(buf);
}

static void dep_record_rejects_every_flipped_byte(void **state)
{
	struct fix *f = *state;
	struct ck_dep d, back;
	uint8_t key[CK_KEY_LEN], *buf;
	size_t n;

	make_dep(f, &d, "flip", key);
	assert_int_equal(ck_dep_encode(&f->v, &d, &buf, &n), 0);
	for (size_t i = 0; i < n; i++) {
		buf[i] ^= 0x01;
		assert_true(ck_dep_decode(&f->v, buf, n, &back) < 0);
		buf[i] ^= 0x01;
	}
	/* truncated, extended, or read as a tree record */
	assert_true(ck_dep_decode(&f->v, buf, n - 1, &back) < 0);
	assert_true(ck_dep_decode(&f->v, buf, 20, &back) < 0);
	struct ck_tree_rec t;
	assert_true(ck_tree_rec_decode(&f->v, buf, n, &t) < 0);
	free(buf);
}

static void dep_record_from_another_volume_is_rejected(void **state)
{
	struct fix *f = *state;
	struct ck_volume other;
	struct ck_dep d, back;
	uint8_t key[CK_KEY_LEN], *buf;
	char msg[512], *vol2 = ck_test_path(f->dir, "vol2");
	size_t n;

	assert_int_equal(ck_volume_create(vol2, f->keys, 0, msg, sizeof(msg)), 0);
	assert_int_equal(ck_volume_open(vol2, f->keys, &other, msg, sizeof(msg)), 0);
	make_dep(f, &d, "moved", key);
	assert_int_equal(ck_dep_encode(&other, &d, &buf, &n), 0);
	assert_int_equal(ck_dep_decode(&f->v, buf, n, &back), -EBADMSG);
	free(buf);
	ck_volume_close(&other);
	free(vol2);
}

static void tree_record_round_trips_and_rejects_flips(void **state)
{
	struct fix *f = *state;
	struct ck_tree_rec t = { 0 }, back;
	uint8_t *buf;
	size_t n;

	assert_int_equal(ck_random(t.id, CK_ID_LEN), 0);
	assert_int_equal(ck_random(t.dep_id, CK_ID_LEN), 0);
	t.state = CK_TREE_APPLYING;
	snprintf(t.path, sizeof(t.path), "mail/alice");
	t.wlen = 40;
	memset(t.wrapped_key, 7, 40);
	memset(t.old_rec_id, 9, CK_ID_LEN);
	assert_int_equal(ck_tree_rec_encode(&f->v, &t, &buf, &n), 0);
	assert_int_equal(ck_tree_rec_decode(&f->v, buf, n, &back), 0);
	assert_string_equal(back.path, "mail/alice");
	assert_int_equal(back.state, CK_TREE_APPLYING);
	assert_memory_equal(back.old_rec_id, t.old_rec_id, CK_ID_LEN);
	for (size_t i = 0; i < n; i++) {
		buf[i] ^= 0x80;
		assert_true(ck_tree_rec_decode(&f->v, buf, n, &back) < 0);
		buf[i] ^= 0x80;
	}
	free(buf);
}

static void store_saves_finds_and_ignores_misnamed_copies(void **state)
{
	struct fix *f = *state;
	struct ck_dep d, found, *all;
	uint8_t key[CK_KEY_LEN];
	size_t n;
	int bad = 0;
	char hex[33], from[4096], to[4096];

	make_dep(f, &d, "store", key);
	assert_int_equal(ck_dep_save(&f->v, &d), 0);
	assert_int_equal(ck_dep_find(&f->v, "store", &found), 0);
	assert_memory_equal(found.id, d.id, CK_ID_LEN);
	assert_int_equal(ck_dep_find(&f->v, "nosuch", &found), -ENOENT);
	/* A copy under another file name is not a second record. */
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", d.id[i]);
	snprintf(from, sizeof(from), "%s/.ckfs/deps/%s", f->vol, hex);
	snprintf(to, sizeof(to), "%s/.ckfs/deps/00000000000000000000000000000000", f->vol);
	uint8_t buf[65536];
	size_t len = ck_test_read_file(from, buf, sizeof(buf));
	ck_test_write_file(to, buf, len, 0600);
	assert_int_equal(ck_dep_load_all(&f->v, &all, &n, &bad), 0);
	assert_int_equal(n, 1);
	assert_int_equal(bad, 1);
	free(all);
}

static void unwrap_uses_a_customer_key(void **state)
{
	struct fix *f = *state;
	struct ck_dep d;
	uint8_t key[CK_KEY_LEN], got[CK_KEY_LEN];
	char msg[1024];
	int fb = -1;

	make_dep(f, &d, "ok", key);
	assert_int_equal(ck_dep_unwrap(&d, got, 1, &fb, msg, sizeof(msg)), 0);
	assert_memory_equal(got, key, CK_KEY_LEN);
	assert_int_equal(fb, 0);
	assert_int_equal(d.wraps[0].last_result, CK_RES_OK);
	assert_int_equal(ck_dep_probe(&d, msg, sizeof(msg)), 0);
}

static void every_customer_key_denied_is_a_revocation_without_fallback(void **state)
{
	struct fix *f = *state;
	struct ck_dep d;
	uint8_t key[CK_KEY_LEN], got[CK_KEY_LEN];
	char msg[1024];
	int fb = -1;

	make_dep(f, &d, "gone", key);
	unlink(d.wraps[0].uri + 5);
	unlink(d.wraps[1].uri + 5);
	assert_int_equal(ck_dep_unwrap(&d, got, 1, &fb, msg, sizeof(msg)), -EKEYREVOKED);
	assert_int_equal(fb, 0);
	assert_int_equal(d.wraps[0].last_result, CK_RES_DENIED);
	assert_int_equal(ck_dep_probe(&d, msg, sizeof(msg)), -EKEYREVOKED);
	assert_non_null(strstr(msg, "c1"));
}

/* A key file path that is a directory makes the file: provider answer
 * "unavailable" (an error other than ENOENT/EACCES). */
static void make_unavailable(const char *uri)
{
	unlink(uri + 5);
	assert_int_equal(mkdir(uri + 5, 0700), 0);
}

static void every_customer_key_unavailable_falls_back_to_availability_key(void **state)
{
	struct fix *f = *state;
	struct ck_dep d;
	uint8_t key[CK_KEY_LEN], got[CK_KEY_LEN];
	char msg[1024];
	int fb = 0;

	make_dep(f, &d, "outage", key);
	make_unavailable(d.wraps[0].uri);
	make_unavailable(d.wraps[1].uri);
	assert_int_equal(ck_dep_unwrap(&d, got, 1, &fb, msg, sizeof(msg)), 0);
	assert_int_equal(fb, 1);
	assert_memory_equal(got, key, CK_KEY_LEN);
	/* without fallback allowed (tools): unavailable */
	assert_int_equal(ck_dep_unwrap(&d, got, 0, &fb, msg, sizeof(msg)), -EAGAIN);
	assert_int_equal(ck_dep_probe(&d, msg, sizeof(msg)), -EAGAIN);
	/* never for a DEP that is not active */
	d.state = CK_DEP_REVOKED;
	assert_int_equal(ck_dep_unwrap(&d, got, 1, &fb, msg, sizeof(msg)), -EAGAIN);
	assert_int_equal(fb, 0);
}

static void one_denied_one_unavailable_gets_no_fallback(void **state)
{
	struct fix *f = *state;
	struct ck_dep d;
	uint8_t key[CK_KEY_LEN], got[CK_KEY_LEN];
	char msg[1024];
	int fb = 0;

	make_dep(f, &d, "mixed", key);
	unlink(d.wraps[0].uri + 5);
	make_unavailable(d.wraps[1].uri);
	assert_int_equal(ck_dep_unwrap(&d, got, 1, &fb, msg, sizeof(msg)), -EAGAIN);
	assert_int_equal(fb, 0);
}

static void tree_key_from_tries_the_next_wrap(void **state)
{
	struct ck_tree_rec t = { 0 };
	uint8_t dk1[CK_KEY_LEN], dk2[CK_KEY_LEN], tk[CK_KEY_LEN], got[CK_KEY_LEN];
	size_t len;

	(void)state;
	ck_test_fill(dk1, sizeof(dk1), 1);
	ck_test_fill(dk2, sizeof(dk2), 2);
	ck_test_fill(tk, sizeof(tk), 3);
	assert_int_equal(ck_key_wrap(dk1, tk, CK_KEY_LEN, t.wrapped_key, &len), 0);
	t.wlen = (uint16_t)len;
	assert_int_equal(ck_tree_key_from(&t, dk1, got), 0);
	assert_memory_equal(got, tk, CK_KEY_LEN);
	assert_int_equal(ck_tree_key_from(&t, dk2, got), -EBADMSG);
	assert_int_equal(ck_key_wrap(dk2, tk, CK_KEY_LEN, t.next_wrapped_key, &len), 0);
	t.next_wlen = (uint16_t)len;
	assert_int_equal(ck_tree_key_from(&t, dk2, got), 0);
	assert_memory_equal(got, tk, CK_KEY_LEN);
}

static void config_round_trips_and_defaults(void **state)
{
	struct fix *f = *state;
	struct ck_config c = { 0 };

	assert_int_equal(ck_config_load(&f->v, &c), 0);
	assert_int_equal(c.purge_wait, 0);
	c.purge_wait = 30 * 86400;
	assert_int_equal(ck_config_save(&f->v, &c), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ck_config_load(&f->v, &c), 0);
	assert_int_equal(c.purge_wait, 30 * 86400);
}

static void parsers_accept_good_and_refuse_bad_input(void **state)
{
	char out[64];
	uint64_t d;

	(void)state;
	assert_int_equal(ck_parse_duration("0", &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(ck_parse_duration("90s", &d), 0);
	assert_int_equal(d, 90);
	assert_int_equal(ck_parse_duration("12h", &d), 0);
	assert_int_equal(d, 43200);
	assert_int_equal(ck_parse_duration("30d", &d), 0);
	assert_int_equal(d, 2592000);
	static const char *const bad_d[] = { "", "-1", "5x", "1hh", "h", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad_d) / sizeof(bad_d[0]); i++)
		assert_int_equal(ck_parse_duration(bad_d[i], &d), -EINVAL);
	assert_true(ck_dep_name_valid("contoso"));
	assert_true(ck_dep_name_valid("Fab-rikam_2.eu"));
	static const char *const bad_n[] = { "", "-x", ".x", "a b", "a/b", "ä",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof(bad_n) / sizeof(bad_n[0]); i++)
		assert_false(ck_dep_name_valid(bad_n[i]));
	assert_int_equal(ck_tree_path_normalise("/mail//alice/", out, sizeof(out)), 0);
	assert_string_equal(out, "mail/alice");
	assert_int_equal(ck_tree_path_normalise("mail/../x", out, sizeof(out)), -EINVAL);
	assert_int_equal(ck_tree_path_normalise("./x", out, sizeof(out)), -EINVAL);
	assert_int_equal(ck_tree_path_normalise("///", out, sizeof(out)), -EINVAL);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(dep_record_round_trips, setup, teardown),
		cmocka_unit_test_setup_teardown(dep_record_rejects_every_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(dep_record_from_another_volume_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(tree_record_round_trips_and_rejects_flips, setup, teardown),
		cmocka_unit_test_setup_teardown(store_saves_finds_and_ignores_misnamed_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(unwrap_uses_a_customer_key, setup, teardown),
		cmocka_unit_test_setup_teardown(every_customer_key_denied_is_a_revocation_without_fallback,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(every_customer_key_unavailable_falls_back_to_availability_key,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(one_denied_one_unavailable_gets_no_fallback, setup, teardown),
		cmocka_unit_test(tree_key_from_tries_the_next_wrap),
		cmocka_unit_test_setup_teardown(config_round_trips_and_defaults, setup, teardown),
		cmocka_unit_test(parsers_accept_good_and_refuse_bad_input),
	};

	(void)argc;
	(void)argv;
	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
