/* Fuzz the exec: provider's answer parser (parse_answer and its strict
 * base64 decoder in keys/provider_exec.c). Both are static, so this target
 * includes the provider's source (scripts/fuzz then leaves
 * keys/provider_exec.c out of the link); running a real helper per input
 * would be thousands of times slower. An exported parse function would let
 * this target use the public API instead.
 *
 * Input: control byte | the helper's stdout (at most EXEC_ANSWER_MAX bytes,
 * as exec_run bounds it).
 *   bits 0-1: how the helper ended: 0 exit 0, 1 exit 1, 2 SIGKILL, 3 exit 0
 *   bit 2: it closed stdin before taking the request
 *   bit 3: the request wants a payload (wrap, unwrap) or not (probe)
 *   bit 4: payload room of CK_KEY_LEN bytes instead of CK_WRAP_MAX
 * Properties: the result is 0, -EKEYREVOKED or -EAGAIN; 0 only from a
 * helper that exited 0 after taking the request; a payload fits its room
 * and re-encodes to the text it came from; the message is a string. */
#include "keys/provider_exec.c"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char helper[] = "/usr/lib/ckfs/fuzz-helper";
	struct exec_cmd c = { .argv = { helper, NULL }, .timeout_s = 1 };
	struct exec_run run;
	char msg[512];
	uint8_t *payload;
	size_t cap, plen = 0, n;
	int ctl, want, r;

	if (size < 1)
		return 0;
	ctl = data[0];
	n = size - 1 < EXEC_ANSWER_MAX ? size - 1 : EXEC_ANSWER_MAX;
	memset(&run, 0, sizeof(run));
	/* exec_run gives parse_answer EXEC_ANSWER_MAX + 1 bytes of room; the
	 * exact size here lets AddressSanitizer see any read past the answer
	 * and its terminating NUL. */
	run.ans = malloc(n + 1);
	memcpy(run.ans, data + 1, n);
	run.ans_len = n;
	switch (ctl & 3) {
	case 1: run.status = 1 << 8; break;       /* exited with status 1 */
	case 2: run.status = SIGKILL; break;      /* killed by SIGKILL */
	default: run.status = 0; break;
	}
	run.stdin_closed = !!(ctl & 4);
	want = !!(ctl & 8);
	cap = ctl & 16 ? CK_KEY_LEN : CK_WRAP_MAX;
	payload = malloc(cap);

	memset(msg, 'x', sizeof(msg));
	r = parse_answer(&c, &run, want, payload, cap, &plen, msg, sizeof(msg));
	FZ_CHECK(r == 0 || r == -EKEYREVOKED || r == -EAGAIN);
	if (r < 0)
		FZ_CHECK(memchr(msg, 0, sizeof(msg)) != NULL);
	if (r == 0) {
		FZ_CHECK((ctl & 3) == 0 || (ctl & 3) == 3);
		FZ_CHECK(!run.stdin_closed);
		FZ_CHECK(n >= 2 && !memcmp(data + 1, "ok", 2));
	}
	if (r == 0 && want) {
		const char *b64 = (const char *)data + 1 + 3;
		size_t bn = n - 3;
		char *back;

		while (bn > 0 && (b64[bn - 1] == '\n' || b64[bn - 1] == '\r'))
			bn--;
		FZ_CHECK(plen >= 1 && plen <= cap);
		back = malloc(b64_enclen(plen) + 1);
		b64_encode(payload, plen, back);
		back[b64_enclen(plen)] = '\0';
		FZ_CHECK(strlen(back) == bn && !memcmp(back, b64, bn));
		free(back);
	}
	free(payload);
	free(run.ans);

	/* The decoder alone, into room of exactly what it may need. */
	if (size > 1) {
		size_t room = (size - 1) / 4 * 3;
		uint8_t *out = malloc(room ? room : 1);
		long l = b64_decode((const char *)data + 1, size - 1, out, room);
		FZ_CHECK(l == -EINVAL || l == -E2BIG || (l >= 0 && (size_t)l <= room));
		free(out);
	}
	return 0;
}
