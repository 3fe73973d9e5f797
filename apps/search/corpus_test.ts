import assert from "node:assert/strict";
import { readSpamAssassin } from "./corpus.ts";
import { decodeEncodedWords, parseMail } from "./mail_parser.ts";

Deno.test("encoded-word subjects are decoded from their charset", () => {
  assert.equal(
    decodeEncodedWords(
      "=?iso-8859-1?Q?Re:_RE:_=5Bzzzzteana=5D_Sitting_Bull_=FCber_alles?=",
    ),
    "Re: RE: [zzzzteana] Sitting Bull über alles",
  );
  assert.equal(decodeEncodedWords("=?utf-8?B?Q2Fmw6k=?= ok"), "Café ok");
});

Deno.test("multipart mail yields its text part, decoded from quoted-printable", () => {
  const raw = [
    "From: Ann Example <ANN@example.com>",
    "Subject: hello",
    "Date: Thu, 22 Aug 2002 12:36:23 +0100",
    'Content-Type: multipart/alternative; boundary="XX"',
    "",
    "--XX",
    "Content-Type: text/html",
    "",
    "<p>html version</p>",
    "--XX",
    "Content-Type: text/plain; charset=iso-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "caf=E9 con=",
    "tent",
    "--XX--",
  ].join("\r\n");
  const m = parseMail(new TextEncoder().encode(raw));
  assert.equal(m.subject, "hello");
  assert.equal(m.from, "ann@example.com");
  assert.equal(m.date, Date.parse("Thu, 22 Aug 2002 12:36:23 +0100"));
  assert.equal(m.body.trim(), "café content");
});

Deno.test("broken mail does not throw", () => {
  const m = parseMail(new TextEncoder().encode("no headers at all"));
  assert.equal(m.subject, "");
  assert.equal(
    parseMail(new Uint8Array([0xff, 0x00, 0x0a, 0x0a, 0x41])).body,
    "A",
  );
});

Deno.test("the SpamAssassin corpus reads as documents with subjects and bodies", async () => {
  const docs = [];
  for await (const d of readSpamAssassin(200)) docs.push(d);
  assert.equal(docs.length, 200);
  assert.equal(docs[0]!.id, "easy-ham-1-00001");
  assert.ok(docs.filter((d) => d.name.length > 0).length > 190);
  assert.ok(docs.filter((d) => d.body.length > 20).length > 190);
  assert.equal(new Set(docs.map((d) => d.id)).size, 200);
});
