--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: account; Type: TABLE DATA; Schema: payext; Owner: postgres
--

SET SESSION AUTHORIZATION DEFAULT;

ALTER TABLE payext.account DISABLE TRIGGER ALL;

COPY payext.account (id, kind, owner, public_service_id, display_name, currency, balance, status, created_at) FROM stdin;
3	system	\N	\N	\N	CNY	\N	active	2026-12-06 19:04:34.584139+00
2	merchant	\N	gh_upgrade_shop	Upgrade Shop	CNY	500	active	2026-12-06 19:04:34.583487+00
1	wallet	upgrade_erin	\N	\N	CNY	48800	active	2026-12-06 19:04:34.579759+00
\.


ALTER TABLE payext.account ENABLE TRIGGER ALL;

--
-- Data for Name: association_rule; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.association_rule DISABLE TRIGGER ALL;

COPY payext.association_rule (id, public_service_id, min_interactions, within, min_total_amount, created_at, superseded_at) FROM stdin;
1	\N	1	1 day	0	2026-12-06 19:04:34.599662+00	\N
\.


ALTER TABLE payext.association_rule ENABLE TRIGGER ALL;

--
-- Data for Name: association_state; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.association_state DISABLE TRIGGER ALL;

COPY payext.association_state (consumer, public_service_id, state, established_at, how, rule_id, changed_at) FROM stdin;
upgrade_erin	gh_upgrade_shop	associated	2026-12-06 19:04:34.605858+00	auto	1	2026-12-06 19:04:34.605858+00
\.


ALTER TABLE payext.association_state ENABLE TRIGGER ALL;

--
-- Data for Name: capability_grant; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.capability_grant DISABLE TRIGGER ALL;

COPY payext.capability_grant (grantee, capability, granted_at) FROM stdin;
payext_upgrade_till	merchant	2026-12-06 19:04:34.609629+00
payext_upgrade_admin	admin	2026-12-06 19:04:34.612628+00
payext_upgrade_admin	merchant	2026-12-06 19:04:34.61399+00
16826	merchant	2026-12-06 19:04:34.614946+00
\.


ALTER TABLE payext.capability_grant ENABLE TRIGGER ALL;

--
-- Data for Name: transfer; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.transfer DISABLE TRIGGER ALL;

COPY payext.transfer (id, debit_account, credit_account, amount, currency, kind, idem_scope, reference, created_at, checksum) FROM stdin;
1	3	1	50000	CNY	top_up	0	upgrade-bank-1	2026-12-06 19:04:34.584139+00	\\x02468d77324619f20bf54e5373f0439d
2	1	2	1200	CNY	charge	2	upgrade-order-1	2026-12-06 19:04:34.587457+00	\\x2d6c2aa5c856a91ea569068071a1f8b8
3	2	1	200	CNY	refund	2	upgrade-refund-1	2026-12-06 19:04:34.594446+00	\\xa65b4f6121005a906d52412b393617ac
4	2	3	500	CNY	withdraw	0	upgrade-payout-1	2026-12-06 19:04:34.596965+00	\\xc6f70beee8951214137dccdf454dddc8
5	1	2	200	CNY	parking	2	stay-1-0	2026-12-06 19:04:34.605858+00	\\x7031d817026c8e206ef00423085af0ac
\.


ALTER TABLE payext.transfer ENABLE TRIGGER ALL;

--
-- Data for Name: interaction; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.interaction DISABLE TRIGGER ALL;

COPY payext.interaction (id, consumer, public_service_id, kind, amount, currency, occurred_at, transfer_id, recorded_at) FROM stdin;
1	upgrade_erin	gh_upgrade_shop	payment	1200	CNY	2026-12-06 19:04:34.587457+00	2	2026-12-06 19:04:34.587457+00
2	upgrade_erin	gh_upgrade_shop	refund	200	CNY	2026-12-06 19:04:34.594446+00	3	2026-12-06 19:04:34.594446+00
3	upgrade_erin	gh_upgrade_shop	visit	0	\N	2026-12-06 19:04:34.600961+00	\N	2026-12-06 19:04:34.600961+00
4	upgrade_erin	gh_upgrade_shop	payment	200	CNY	2026-12-06 19:04:34.605858+00	5	2026-12-06 19:04:34.605858+00
\.


ALTER TABLE payext.interaction ENABLE TRIGGER ALL;

--
-- Data for Name: interaction_pair; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.interaction_pair DISABLE TRIGGER ALL;

COPY payext.interaction_pair (consumer, public_service_id, interactions, payments, payment_amount, refund_amount, first_at, last_at) FROM stdin;
upgrade_erin	gh_upgrade_shop	4	2	1400	200	2026-12-06 19:04:34.587457+00	2026-12-06 19:04:34.605858+00
\.


ALTER TABLE payext.interaction_pair ENABLE TRIGGER ALL;

--
-- Data for Name: merchant_credit; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.merchant_credit DISABLE TRIGGER ALL;

COPY payext.merchant_credit (account, bucket, amount) FROM stdin;
2	3	200
\.


ALTER TABLE payext.merchant_credit ENABLE TRIGGER ALL;

--
-- Data for Name: merchant_role; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.merchant_role DISABLE TRIGGER ALL;

COPY payext.merchant_role (grantee, merchant, mapped_at) FROM stdin;
payext_upgrade_till	2	2026-12-06 19:04:34.611949+00
\.


ALTER TABLE payext.merchant_role ENABLE TRIGGER ALL;

--
-- Data for Name: parking_lot; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.parking_lot DISABLE TRIGGER ALL;

COPY payext.parking_lot (id, operator, name, currency, time_zone, free_minutes, unit_minutes, day_price, night_price, day_start, night_start, cap_24h, cap_stay, exit_grace_minutes, created_at) FROM stdin;
1	2	Upgrade Lot	CNY	Asia/Shanghai	0	60	100	\N	08:00:00	20:00:00	\N	\N	15	2026-12-06 19:04:34.601551+00
\.


ALTER TABLE payext.parking_lot ENABLE TRIGGER ALL;

--
-- Data for Name: parking_stay; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.parking_stay DISABLE TRIGGER ALL;

COPY payext.parking_stay (id, lot, plate, entered_at, exited_at, fee, paid, paid_at, owner_at_entry, state, recorded_at) FROM stdin;
1	1	UP0001	2026-12-06 17:04:34.603442+00	2026-12-06 19:03:34.605858+00	200	200	2026-12-06 19:04:34.605858+00	upgrade_erin	exited	2026-12-06 19:04:34.603442+00
2	1	UP0001	2026-12-06 19:04:34.608796+00	\N	\N	0	\N	upgrade_erin	open	2026-12-06 19:04:34.608796+00
\.


ALTER TABLE payext.parking_stay ENABLE TRIGGER ALL;

--
-- Data for Name: parking_payment; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.parking_payment DISABLE TRIGGER ALL;

COPY payext.parking_payment (transfer_id, stay, wallet, amount, how, paid_at) FROM stdin;
5	1	1	200	auto	2026-12-06 19:04:34.605858+00
\.


ALTER TABLE payext.parking_payment ENABLE TRIGGER ALL;

--
-- Data for Name: parking_plate_events; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.parking_plate_events DISABLE TRIGGER ALL;

COPY payext.parking_plate_events (lot, plate, events) FROM stdin;
1	UP0001	3
\.


ALTER TABLE payext.parking_plate_events ENABLE TRIGGER ALL;

--
-- Data for Name: payment_code; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.payment_code DISABLE TRIGGER ALL;

COPY payext.payment_code (serial, short_serial, key_id, wallet, max_amount, created_at, expires_at, state, closed_at) FROM stdin;
1	1	1	1	\N	2026-12-06 19:04:34.587457+00	2026-12-06 19:05:34.587457+00	used	2026-12-06 19:04:34.587457+00
2	2	1	1	900	2026-12-06 19:04:34.599135+00	2026-12-06 19:05:34.599135+00	issued	\N
\.


ALTER TABLE payext.payment_code ENABLE TRIGGER ALL;

--
-- Data for Name: payment; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.payment DISABLE TRIGGER ALL;

COPY payext.payment (transfer_id, merchant, order_ref, wallet, code_serial, amount, refunded, created_at, updated_at) FROM stdin;
2	2	upgrade-order-1	1	1	1200	200	2026-12-06 19:04:34.587457+00	2026-12-06 19:04:34.594446+00
\.


ALTER TABLE payext.payment ENABLE TRIGGER ALL;

--
-- Data for Name: refund; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.refund DISABLE TRIGGER ALL;

COPY payext.refund (transfer_id, payment, merchant, refund_ref, amount, created_at) FROM stdin;
3	2	2	upgrade-refund-1	200	2026-12-06 19:04:34.594446+00
\.


ALTER TABLE payext.refund ENABLE TRIGGER ALL;

--
-- Data for Name: vehicle; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.vehicle DISABLE TRIGGER ALL;

COPY payext.vehicle (plate, owner, auto_pay, bound_at) FROM stdin;
UP0001	upgrade_erin	t	2026-12-06 19:04:34.602537+00
\.


ALTER TABLE payext.vehicle ENABLE TRIGGER ALL;

--
-- Data for Name: vehicle_owner; Type: TABLE DATA; Schema: payext; Owner: postgres
--

ALTER TABLE payext.vehicle_owner DISABLE TRIGGER ALL;

COPY payext.vehicle_owner (owner, vehicles) FROM stdin;
upgrade_erin	1
\.


ALTER TABLE payext.vehicle_owner ENABLE TRIGGER ALL;

--
-- Name: account_id_seq; Type: SEQUENCE SET; Schema: payext; Owner: postgres
--

SELECT pg_catalog.setval('payext.account_id_seq', 3, true);


--
-- Name: association_rule_id_seq; Type: SEQUENCE SET; Schema: payext; Owner: postgres
--

SELECT pg_catalog.setval('payext.association_rule_id_seq', 1, true);


--
-- Name: code_serial_seq; Type: SEQUENCE SET; Schema: payext; Owner: postgres
--

SELECT pg_catalog.setval('payext.code_serial_seq', 2, true);


--
-- Name: interaction_id_seq; Type: SEQUENCE SET; Schema: payext; Owner: postgres
--

SELECT pg_catalog.setval('payext.interaction_id_seq', 4, true);


--
-- Name: parking_lot_id_seq; Type: SEQUENCE SET; Schema: payext; Owner: postgres
--

SELECT pg_catalog.setval('payext.parking_lot_id_seq', 1, true);


--
-- Name: parking_stay_id_seq; Type: SEQUENCE SET; Schema: payext; Owner: postgres
--

SELECT pg_catalog.setval('payext.parking_stay_id_seq', 2, true);


--
-- Name: transfer_id_seq; Type: SEQUENCE SET; Schema: payext; Owner: postgres
--

SELECT pg_catalog.setval('payext.transfer_id_seq', 5, true);


--
-- PostgreSQL database dump complete
--


