/* Known-answer vectors for the primitives behind keys/crypto.h, as hex.
 * Every value is copied from the published document named next to it and
 * was cross-checked against an independent implementation (pyca/cryptography)
 * when it was added. Used by tests/unit/test_crypto.c. */
#ifndef CK_TEST_CRYPTO_KAT_H
#define CK_TEST_CRYPTO_KAT_H

/* ---- AES-256-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation
 * (GCM)", revised 2005, Appendix B, test cases 13-16 (256-bit key, 96-bit
 * IV). The same vectors appear in NIST's gcmEncryptExtIV256.rsp. ---- */
struct gcm_kat {
	const char *name, *key, *iv, *aad, *pt, *ct, *tag;
};
#define GCM_K15 "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define GCM_IV15 "cafebabefacedbaddecaf888"
#define GCM_P15 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
                "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
#define GCM_C15 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" \
                "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
#define GCM_P16 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
                "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
#define GCM_C16 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" \
                "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
static const struct gcm_kat gcm_kats[] = {
	{ "gcm-tc13 (empty pt, no aad)",
	  "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "", "", "",
	  "530f8afbc74536b9a963b4f1c4cb738b" },
	{ "gcm-tc14 (16 zero bytes, no aad)",
	  "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "",
	  "00000000000000000000000000000000",
	  "cea7403d4d606b6e074ec5d3baf39d18",
	  "d0d1c8a799996bf0265b98b5d48ab919" },
	{ "gcm-tc15 (64 bytes, no aad)", GCM_K15, GCM_IV15, "", GCM_P15, GCM_C15,
	  "b094dac5d93471bdec1a502270e3cc6c" },
	{ "gcm-tc16 (60 bytes, 20 bytes aad)", GCM_K15, GCM_IV15,
	  "feedfacedeadbeeffeedfacedeadbeefabaddad2", GCM_P16, GCM_C16,
	  "76fc6ece0f4e1768cddf8853bb2d551b" },
};

/* ---- HKDF-SHA256: RFC 5869 Appendix A.1-A.3 (test cases 1-3). ---- */
struct hkdf_kat {
	const char *name, *ikm, *salt, *info, *okm;
};
static const struct hkdf_kat hkdf_kats[] = {
	{ "rfc5869-tc1",
	  "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
	  "000102030405060708090a0b0c",
	  "f0f1f2f3f4f5f6f7f8f9",
	  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	  "34007208d5b887185865" },
	{ "rfc5869-tc2",
	  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	  "404142434445464748494a4b4c4d4e4f",
	  "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	  "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
	  "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	  "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	  "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	  "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	  "cc30c58179ec3e87c14c01d5c1f3434f1d87" },
	{ "rfc5869-tc3 (empty salt and info)",
	  "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
	  "", "",
	  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	  "9d201395faa4b61a96c8" },
};

/* ---- HMAC-SHA256: RFC 4231 section 4.2-4.5 (test cases 1-4).
 * ck_hmac_sha256 takes exactly 32-byte keys. HMAC zero-pads any key shorter
 * than the 64-byte SHA-256 block (RFC 2104 section 2), so an RFC key of
 * fewer than 32 bytes followed by zero bytes up to 32 is the same key; the
 * vectors below are written with that padding. ---- */
struct hmac_kat {
	const char *name, *key32, *data, *mac;
};
static const struct hmac_kat hmac_kats[] = {
	{ "rfc4231-tc1",
	  "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b" "000000000000000000000000",
	  "4869205468657265", /* "Hi There" */
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	{ "rfc4231-tc2",
	  "4a656665" "00000000000000000000000000000000000000000000000000000000",
	  /* "what do ya want for nothing?" */
	  "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
	{ "rfc4231-tc3",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "000000000000000000000000",
	  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	  "dddddddddddddddddddddddddddddddddddd",
	  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
	{ "rfc4231-tc4",
	  "0102030405060708090a0b0c0d0e0f10111213141516171819" "00000000000000",
	  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
	  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
	  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
};

/* ---- AES-SIV: RFC 5297 Appendix A. key_len 32 = AES-128-SIV (CMAC key
 * || CTR key). Output is V || C. ---- */
/* A.1: deterministic authenticated encryption, one AD string. */
#define SIV_A1_KEY "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
#define SIV_A1_AD  "101112131415161718191a1b1c1d1e1f2021222324252627"
#define SIV_A1_PT  "112233445566778899aabbccddee"
#define SIV_A1_OUT "85632d07c6e8f37f950acd320a2ecc93" "40c02b9690c4dc04daef7f6afe5c"
/* A.2: nonce-based authenticated encryption: AD1, AD2, then the nonce as
 * the last AD component. */
#define SIV_A2_KEY "7f7e7d7c7b7a797877767574737271704041424344454647" "48494a4b4c4d4e4f"
#define SIV_A2_AD1 "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa9988" \
                   "7766554433221100"
#define SIV_A2_AD2 "102030405060708090a0"
#define SIV_A2_NONCE "09f911029d74e35bd84156c5635688c0"
#define SIV_A2_PT  "7468697320697320736f6d6520706c61696e7465787420746f20656e63727970" \
                   "74207573696e67205349562d414553"
#define SIV_A2_OUT "7bdb6e3b432667eb06f4d14bff2fbd0f" \
                   "cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829" \
                   "ea64ad544a272e9c485b62a3fd5c0d"

/* ---- AES-256 key wrap with padding (RFC 5649). The RFC's own examples
 * (section 6) use a 192-bit KEK, which ck_key_wrap does not take. This
 * vector was computed with pyca/cryptography's
 * aes_key_wrap_with_padding() (an independent implementation of RFC 5649,
 * which reproduces the RFC's own section 6 examples),
 * KEK = 00 01 .. 1f, key = ff ee .. 00 repeated to 32 bytes; KWP is
 * deterministic, so it is a true known answer. ---- */
#define KWP_KEK "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KWP_KEY "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define KWP_WRAPPED "1c6ee8db2050b292405cf63edf63518d1e17dd360c689cb7" \
                    "279dc69ec0c5f49501646caf488d2f37"
/* 20-byte key (not a multiple of 8): exercises the padding path. */
#define KWP_KEY20 "c37b7e6492584340bed12207808941155068f738"
#define KWP_WRAPPED20 "29b7fa191c2165684374eee9f74595e2a42bace75c425b3053efa26ffe1bb32f"

#endif
