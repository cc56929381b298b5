"""Scenario: the course catalog at 10,000 courses and 100,000 lessons.

    python bench/catalog.py [--courses N] [--lessons-per-course N] [--duration S]
                            [--rounds R] [--queries N] [--json PATH]

1. Starts an embedded PostgreSQL in a temp dir, creates a fresh database, migrates it to
   head and seeds it with set-based SQL and COPY (not through the API): instructors,
   published courses with generated English and Vietnamese titles, subtitles,
   descriptions, tags, two modules and N lessons each, then the lessons' titles are
   folded into `courses.lesson_titles` (one UPDATE) so they feed the search document.
2. Starts Lyceum (uvicorn, one worker) on that database and the bare FastAPI app.
3. Search latency: distinct full-text queries (so every one misses the catalog cache),
   one at a time from a separate process: p50/p99 and the mean number of matches.
   Target: p50 under 30 ms. Then the database time of the catalog's statements for a
   few of those queries, from EXPLAIN ANALYZE.
4. Cached catalog throughput: `GET /api/v1/courses?sort=newest&size=20` (the same URL
   every time, so the catalog cache answers it) against the bare app's
   `GET /health/live`, alternating rounds at 32 connections, median of the rounds.
   Target: Lyceum req/s / bare req/s >= 0.6.

Exit code 0 whatever the figures; 1 if a server fails to start or any request errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import multiprocessing
import os
import platform
import random
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from psycopg import sql

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    REPO_ROOT,
    BenchError,
    LoadResult,
    LoadSpec,
    Server,
    load_average,
    measure,
    median,
    migrated_postgres,
    percentile,
    probe,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "catalog"
DATABASE = "lyceum_bench_catalog"
CATALOG_PATH = "/api/v1/courses?sort=newest&size=20"
BARE_PATH = "/health/live"
SEARCH_PATH = "/api/v1/courses"
TARGET_SEARCH_P50_MS = 30.0
TARGET_RATIO = 0.6
LYCEUM_STARTUP_TIMEOUT = 90.0
BARE_STARTUP_TIMEOUT = 30.0
TARGETS = ("bare", "lyceum")
INSTRUCTORS = 20
MODULES_PER_COURSE = 2
SEARCH_WARMUP_QUERIES = 20
SEARCH_TIMEOUT = 30.0


# Vocabulary ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One catalog category: course subjects and lesson topics in English and Vietnamese."""

    category: str
    tags: tuple[str, ...]
    en: tuple[str, ...]
    vi: tuple[str, ...]
    topics_en: tuple[str, ...]
    topics_vi: tuple[str, ...]


def subject(
    category: str, *, tags: str, en: str, vi: str, topics_en: str, topics_vi: str
) -> Subject:
    """A Subject from space-separated tags and " | "-separated names and topics."""

    def split(text: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in text.split("|") if part.strip())

    return Subject(
        category, tuple(tags.split()), split(en), split(vi), split(topics_en), split(topics_vi)
    )


SUBJECTS: tuple[Subject, ...] = (
    subject(
        "programming",
        tags="python javascript programming web algorithms testing backend",
        en=(
            "Python Programming | JavaScript | TypeScript | Rust | Go | Java | Web "
            "Development | Django | FastAPI | React | Algorithms | Software Testing"
        ),
        vi=(
            "Lập trình Python | Lập trình web | Lập trình Java | Cấu trúc dữ liệu và giải "
            "thuật | Kiểm thử phần mềm | Lập trình hướng đối tượng"
        ),
        topics_en=(
            "Variables and types | Control flow | Functions | Modules and packages | Error "
            "handling | Unit testing | Debugging | Classes and objects | Recursion | "
            "Sorting algorithms | Async programming | HTTP and REST APIs | Working with "
            "files | Regular expressions | Dependency management | Code review"
        ),
        topics_vi=(
            "Biến và kiểu dữ liệu | Câu lệnh điều kiện | Vòng lặp | Hàm | Xử lý ngoại lệ | "
            "Kiểm thử đơn vị | Gỡ lỗi | Lớp và đối tượng | Đệ quy | Thuật toán sắp xếp | "
            "Lập trình bất đồng bộ | Làm việc với tệp | Biểu thức chính quy | Xây dựng API"
        ),
    ),
    subject(
        "databases",
        tags="sql databases postgresql data-modeling nosql",
        en=("Databases | SQL | PostgreSQL | Database Design | Data Modeling | NoSQL Databases"),
        vi=(
            "Cơ sở dữ liệu | Thiết kế cơ sở dữ liệu | Ngôn ngữ truy vấn SQL | Quản trị cơ "
            "sở dữ liệu"
        ),
        topics_en=(
            "Tables and keys | SELECT queries | Joins | Aggregation and GROUP BY | Indexes "
            "| Transactions | Normalization | Query plans | Backup and restore | "
            "Replication | Full-text search | Stored procedures | Schema migrations | "
            "Isolation levels"
        ),
        topics_vi=(
            "Bảng và khóa | Câu truy vấn SELECT | Phép nối bảng | Gom nhóm dữ liệu | Chỉ "
            "mục | Giao dịch | Chuẩn hóa dữ liệu | Kế hoạch truy vấn | Sao lưu và phục hồi "
            "| Nhân bản dữ liệu | Tìm kiếm toàn văn | Thủ tục lưu trữ"
        ),
    ),
    subject(
        "data-science",
        tags="machine-learning data statistics ai python visualization",
        en=(
            "Data Science | Machine Learning | Deep Learning | Statistics | Data "
            "Visualization | Data Analysis with Pandas | Natural Language Processing | "
            "Artificial Intelligence"
        ),
        vi=(
            "Khoa học dữ liệu | Học máy | Học sâu | Trí tuệ nhân tạo | Phân tích dữ liệu | "
            "Thống kê ứng dụng"
        ),
        topics_en=(
            "Loading and cleaning data | Exploratory analysis | Linear regression | "
            "Classification | Decision trees | Neural networks | Model evaluation | Feature"
            " engineering | Clustering | Charts and dashboards | Hypothesis testing | "
            "Overfitting and regularization | Word embeddings | Gradient descent"
        ),
        topics_vi=(
            "Làm sạch dữ liệu | Phân tích khám phá | Hồi quy tuyến tính | Phân loại | Cây "
            "quyết định | Mạng nơ-ron | Đánh giá mô hình | Trích chọn đặc trưng | Phân cụm "
            "| Biểu đồ trực quan | Kiểm định giả thuyết | Thuật toán hạ gradient"
        ),
    ),
    subject(
        "mathematics",
        tags="math calculus algebra probability statistics",
        en=(
            "Calculus | Linear Algebra | Probability | Discrete Mathematics | Number Theory"
            " | Geometry | Mathematics for Machine Learning"
        ),
        vi=(
            "Toán học | Toán cao cấp | Toán rời rạc | Đại số tuyến tính | Giải tích | Xác "
            "suất thống kê | Hình học"
        ),
        topics_en=(
            "Limits | Derivatives | Integrals | Vectors and matrices | Eigenvalues | Sets "
            "and logic | Proof by induction | Graphs and trees | Combinatorics | Random "
            "variables | Bayes' theorem | Prime numbers | Triangles and circles | Series "
            "and sequences"
        ),
        topics_vi=(
            "Giới hạn | Đạo hàm | Tích phân | Vectơ và ma trận | Trị riêng | Tập hợp và "
            "logic | Chứng minh quy nạp | Đồ thị và cây | Tổ hợp | Biến ngẫu nhiên | Định "
            "lý Bayes | Số nguyên tố | Dãy số và chuỗi"
        ),
    ),
    subject(
        "history",
        tags="history culture politics civilization",
        en=(
            "World History | Ancient Rome | Ancient Greece | The Industrial Revolution | "
            "Southeast Asian History | The Cold War | Medieval Europe | History of Science"
        ),
        vi=(
            "Lịch sử Việt Nam | Lịch sử thế giới | Lịch sử Đông Nam Á | Lịch sử văn minh "
            "nhân loại | Lịch sử nghệ thuật"
        ),
        topics_en=(
            "Sources and evidence | Empires and trade | Religion and society | Wars and "
            "treaties | Revolutions | Everyday life | Art and architecture | Colonialism | "
            "Independence movements | Cities and migration | Science and technology | "
            "Historical maps"
        ),
        topics_vi=(
            "Nguồn sử liệu | Các triều đại phong kiến | Văn hóa và xã hội | Chiến tranh và "
            "hiệp ước | Các cuộc cách mạng | Đời sống thường ngày | Kiến trúc và nghệ thuật"
            " | Thời kỳ thuộc địa | Phong trào độc lập | Đô thị và di cư | Con đường tơ lụa"
        ),
    ),
    subject(
        "languages",
        tags="english language grammar speaking writing ielts",
        en=(
            "English Grammar | Business English | IELTS Preparation | Vietnamese for "
            "Beginners | Japanese | Spanish Conversation | Academic Writing"
        ),
        vi=(
            "Tiếng Anh giao tiếp | Ngữ pháp tiếng Anh | Luyện thi IELTS | Tiếng Nhật sơ cấp"
            " | Tiếng Việt cho người nước ngoài | Tiếng Hàn"
        ),
        topics_en=(
            "Greetings and introductions | Present and past tenses | Pronunciation | "
            "Vocabulary building | Listening practice | Writing emails | Reading "
            "comprehension | Phrasal verbs | Giving presentations | Speaking with "
            "confidence | Idioms | Essay structure"
        ),
        topics_vi=(
            "Chào hỏi và giới thiệu | Thì hiện tại và quá khứ | Phát âm | Mở rộng từ vựng |"
            " Luyện nghe | Viết email | Đọc hiểu | Cụm động từ | Thuyết trình | Giao tiếp "
            "tự tin | Thành ngữ | Cấu trúc bài luận"
        ),
    ),
    subject(
        "business",
        tags="business marketing finance management startup",
        en=(
            "Marketing | Digital Marketing | Accounting | Project Management | "
            "Entrepreneurship | Personal Finance | Leadership | Negotiation"
        ),
        vi=(
            "Quản trị kinh doanh | Tiếp thị số | Kế toán tài chính | Quản lý dự án | Khởi "
            "nghiệp | Tài chính cá nhân | Kỹ năng lãnh đạo"
        ),
        topics_en=(
            "Market research | Branding | Social media | Budgets and forecasts | Balance "
            "sheets | Cash flow | Agile and Scrum | Risk management | Pitching to investors"
            " | Pricing strategy | Team management | Customer interviews"
        ),
        topics_vi=(
            "Nghiên cứu thị trường | Xây dựng thương hiệu | Mạng xã hội | Lập ngân sách | "
            "Bảng cân đối kế toán | Dòng tiền | Phương pháp Agile và Scrum | Quản lý rủi ro"
            " | Gọi vốn đầu tư | Chiến lược giá | Quản lý đội nhóm | Chăm sóc khách hàng"
        ),
    ),
    subject(
        "design",
        tags="design ux photography creative typography",
        en=(
            "Graphic Design | UX Design | UI Design | Typography | Photography | Video "
            "Editing | Illustration"
        ),
        vi=(
            "Thiết kế đồ họa | Thiết kế trải nghiệm người dùng | Nhiếp ảnh | Dựng phim | Vẽ"
            " minh họa"
        ),
        topics_en=(
            "Color theory | Layout and grids | Choosing fonts | Wireframes | Prototyping | "
            "User research | Accessibility | Lighting | Composition | Editing workflow | "
            "Design systems | Portfolio review"
        ),
        topics_vi=(
            "Lý thuyết màu sắc | Bố cục và lưới | Chọn phông chữ | Bản phác thảo | Tạo mẫu "
            "thử | Nghiên cứu người dùng | Khả năng tiếp cận | Ánh sáng | Bố cục khung hình"
            " | Quy trình chỉnh sửa | Hồ sơ năng lực"
        ),
    ),
    subject(
        "science",
        tags="science physics chemistry biology astronomy",
        en=(
            "Physics | Chemistry | Biology | Astronomy | Environmental Science | Genetics |"
            " Quantum Mechanics"
        ),
        vi=(
            "Vật lý đại cương | Hóa học hữu cơ | Sinh học | Thiên văn học | Khoa học môi "
            "trường | Di truyền học"
        ),
        topics_en=(
            "Motion and forces | Energy | Electricity and magnetism | Atoms and molecules |"
            " Chemical reactions | Cells | Evolution | DNA and genes | Stars and galaxies |"
            " Climate change | Ecosystems | Lab safety | Waves and light"
        ),
        topics_vi=(
            "Chuyển động và lực | Năng lượng | Điện và từ | Nguyên tử và phân tử | Phản ứng"
            " hóa học | Tế bào | Tiến hóa | ADN và gen | Các vì sao và thiên hà | Biến đổi "
            "khí hậu | Hệ sinh thái | Sóng và ánh sáng"
        ),
    ),
)

# (template, level it implies or None for any)
TITLES_EN: tuple[tuple[str, str | None], ...] = (
    ("Introduction to {s}", "beginner"),
    ("{s} for Beginners", "beginner"),
    ("Practical {s}", None),
    ("Applied {s}", "intermediate"),
    ("Advanced {s}", "advanced"),
    ("{s} in Practice", None),
    ("Mastering {s}", "advanced"),
    ("Foundations of {s}", "beginner"),
    ("{s}: A Hands-on Course", None),
    ("{s} with Real Projects", "intermediate"),
    ("The Complete {s} Bootcamp", None),
    ("{s} Crash Course", "beginner"),
)
TITLES_VI: tuple[tuple[str, str | None], ...] = (
    ("{s} cơ bản", "beginner"),
    ("{s} nâng cao", "advanced"),
    ("Nhập môn {s}", "beginner"),
    ("{s} cho người mới bắt đầu", "beginner"),
    ("{s} thực hành", None),
    ("Làm chủ {s}", "advanced"),
    ("{s} qua dự án thực tế", "intermediate"),
    ("Khóa học {s} toàn diện", None),
)
SUBTITLES_EN = (
    "Learn {t1}, {t2} and {t3} step by step.",
    "Everything you need to know about {t1} and {t2}.",
    "From {t1} to {t2}, with exercises and quizzes.",
    "A short, practical tour of {t1}, {t2} and {t3}.",
)
SUBTITLES_VI = (
    "Học {t1}, {t2} và {t3} từng bước.",
    "Mọi điều bạn cần biết về {t1} và {t2}.",
    "Từ {t1} đến {t2}, kèm bài tập và câu hỏi.",
    "Hành trình ngắn gọn, thực tế qua {t1}, {t2} và {t3}.",
)
DESCRIPTION_EN = (
    "This course covers {t1}, {t2} and {t3}.",
    "You will work through {n} lessons with worked examples and short exercises.",
    "It is aimed at {audience}.",
    "By the end you will be comfortable with {t4} and ready to tackle {t5}.",
    "{prior}",
)
DESCRIPTION_VI = (
    "Khóa học này bao gồm {t1}, {t2} và {t3}.",
    "Bạn sẽ học qua {n} bài học với ví dụ minh họa và bài tập ngắn.",
    "Khóa học dành cho {audience}.",
    "Khi kết thúc, bạn sẽ nắm vững {t4} và sẵn sàng cho {t5}.",
    "{prior}",
)
AUDIENCES_EN = (
    "students",
    "working professionals",
    "self-taught learners",
    "teachers",
    "anyone curious about {s}",
)
AUDIENCES_VI = (
    "sinh viên",
    "người đi làm",
    "người tự học",
    "giáo viên",
    "bất kỳ ai quan tâm đến {s}",
)
PRIOR_EN = {
    "beginner": "No prior experience with {s} is required.",
    "intermediate": "Some familiarity with {t1} is assumed.",
    "advanced": "You should already be comfortable with {t1} and {t2}.",
}
PRIOR_VI = {
    "beginner": "Không cần kiến thức nền về {s}.",
    "intermediate": "Bạn nên biết trước về {t1}.",
    "advanced": "Bạn cần thành thạo {t1} và {t2} trước khi học.",
}
ASPECTS_EN = ("an overview", "worked examples", "exercises", "common mistakes", "a mini project")
ASPECTS_VI = ("tổng quan", "ví dụ minh họa", "bài tập", "những lỗi thường gặp", "dự án nhỏ")
MODULES_EN = ("Getting started", "Core ideas", "Going further", "Projects")
MODULES_VI = ("Làm quen", "Kiến thức cốt lõi", "Nâng cao", "Dự án")
INSTRUCTOR_NAMES = (
    "Nguyễn Thị Lan",
    "Trần Văn Minh",
    "Lê Hoàng Anh",
    "Phạm Thu Hà",
    "Võ Quốc Bảo",
    "Đặng Ngọc Mai",
    "Alice Johnson",
    "Bob Martinez",
    "Chen Wei",
    "Diana Okafor",
    "Emil Novak",
    "Fatima Rahman",
    "George Hughes",
    "Hana Suzuki",
    "Ivan Petrov",
    "Julia Costa",
    "Karim Haddad",
    "Laura Schmidt",
    "Mateo Rossi",
    "Nadia Kowalski",
)
PRICES = (990, 1990, 2990, 4990, 9990)
LEVELS = ("beginner", "intermediate", "advanced")
VIETNAMESE_SHARE = 0.3
FREE_SHARE = 0.35
PUBLISHED_OVER_DAYS = 5 * 365


def unaccent(text: str) -> str:
    """ "Cơ sở dữ liệu" -> "Co so du lieu" (what a user without a Vietnamese keyboard types)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def slugify(title: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in unaccent(title).lower())
    return "-".join(part for part in cleaned.split("-") if part)[:100] or "course"


def lower_first(text: str) -> str:
    """Lower-case the first letter for use mid-sentence, unless it starts an acronym."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


# Seeding ------------------------------------------------------------------------------


@dataclass
class SeedReport:
    courses: int = 0
    modules: int = 0
    lessons: int = 0
    instructors: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


@dataclass
class _CourseText:
    id: uuid.UUID
    vietnamese: bool
    subject: Subject


class Seeder:
    """Generates the rows from the vocabulary with a seeded RNG (the same data every run)
    and streams them into PostgreSQL with COPY."""

    def __init__(self, courses: int, lessons_per_course: int, seed: int) -> None:
        self.courses = courses
        self.lessons_per_course = lessons_per_course
        self.modules_per_course = max(1, min(MODULES_PER_COURSE, lessons_per_course))
        self.rng = random.Random(seed)
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.instructor_ids: list[uuid.UUID] = []
        self.course_texts: list[_CourseText] = []
        # (course id, enrollments, ratings, rating points) for course_stats.
        self.counters: list[tuple[uuid.UUID, int, int, int]] = []

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def seed(self, url: str) -> SeedReport:
        report = SeedReport()

        @contextlib.contextmanager
        def step(name: str) -> Iterator[None]:
            started = time.perf_counter()
            yield
            report.seconds[name] = time.perf_counter() - started
            print(f"  {name:<28} {report.seconds[name]:6.2f}s", flush=True)

        with psycopg.connect(url) as conn:
            with step("instructors"):
                report.instructors = self.insert_instructors(conn)
            with step("courses (COPY)"):
                report.courses = self.copy_courses(conn)
            with step("course_instructors"):
                conn.execute(
                    "INSERT INTO course_instructors (course_id, user_id) "
                    "SELECT id, owner_id FROM courses"
                )
            with step("modules + lessons (COPY)"):
                report.modules, report.lessons = self.copy_syllabus(conn)
            with step("courses.lesson_titles"):
                # As the repository's refresh_lesson_titles does, for every course at once.
                conn.execute(
                    """
                    UPDATE courses AS c SET lesson_titles = t.titles
                    FROM (
                        SELECT l.course_id,
                               string_agg(l.title, ' ' ORDER BY m.position, l.position)
                                   AS titles
                        FROM lessons AS l JOIN modules AS m ON m.id = l.module_id
                        GROUP BY l.course_id
                    ) AS t
                    WHERE c.id = t.course_id
                    """
                )
            with step("catalog vocabulary"):
                # What the periodic refresh_catalog_vocabulary job does after a change.
                conn.execute("REFRESH MATERIALIZED VIEW catalog_terms")
            with step("commit"):
                conn.commit()
        with psycopg.connect(url, autocommit=True) as conn, step("VACUUM ANALYZE"):
            # The steady state of a live database (autovacuum would get there): statistics
            # for the planner, and no dead row versions left by the UPDATE above.
            tables = (
                "users",
                "courses",
                "course_stats",
                "course_instructors",
                "modules",
                "lessons",
                "catalog_terms",
            )
            for table in tables:
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        return report

    def insert_instructors(self, conn: psycopg.Connection[Any]) -> int:
        rows = []
        for index, name in enumerate(INSTRUCTOR_NAMES[:INSTRUCTORS]):
            user_id = self.new_id()
            self.instructor_ids.append(user_id)
            vietnamese = index < 6
            rows.append(
                (
                    user_id,
                    f"{slugify(name).replace('-', '.')}@bench.example.com",
                    name,
                    "vi" if vietnamese else "en",
                    "Asia/Ho_Chi_Minh" if vietnamese else "UTC",
                )
            )
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO users (id, email, full_name, role, is_active, locale, timezone, "
                "preferences, email_verified_at) "
                "VALUES (%s, %s, %s, 'instructor', true, %s, %s, '{}'::jsonb, now())",
                rows,
            )
        return len(rows)

    def copy_courses(self, conn: psycopg.Connection[Any]) -> int:
        rng = self.rng
        columns = (
            "id, slug, title, subtitle, description, language, level, category, tags, "
            "tags_text, lesson_titles, price_cents, currency, status, owner_id, published_at, "
            "created_at, updated_at"
        )
        with conn.cursor() as cursor, cursor.copy(f"COPY courses ({columns}) FROM STDIN") as copy:
            for index in range(self.courses):
                subject = SUBJECTS[index % len(SUBJECTS)]
                vietnamese = rng.random() < VIETNAMESE_SHARE
                name = rng.choice(subject.vi if vietnamese else subject.en)
                template, implied = rng.choice(TITLES_VI if vietnamese else TITLES_EN)
                level = implied or rng.choice(LEVELS)
                title = template.format(s=name)
                topics = rng.sample(subject.topics_vi if vietnamese else subject.topics_en, 5)
                words = {f"t{n + 1}": lower_first(topic) for n, topic in enumerate(topics)}
                subtitle = rng.choice(SUBTITLES_VI if vietnamese else SUBTITLES_EN).format(**words)
                description = self.description(vietnamese, name, level, words)
                tags = rng.sample(subject.tags, rng.randint(2, min(4, len(subject.tags))))
                published_at = self.now - dt.timedelta(
                    seconds=rng.uniform(0, PUBLISHED_OVER_DAYS * 86400)
                )
                enrollments = min(int(rng.paretovariate(1.2) * 20) - 20, 250_000)
                ratings = int(enrollments * rng.uniform(0.0, 0.3))
                course_id = self.new_id()
                self.course_texts.append(_CourseText(course_id, vietnamese, subject))
                copy.write_row(
                    (
                        course_id,
                        f"{slugify(title)}-{index + 1}",
                        title,
                        subtitle,
                        description,
                        "vi" if vietnamese else "en",
                        level,
                        subject.category,
                        tags,
                        " ".join(tags),
                        "",
                        0 if rng.random() < FREE_SHARE else rng.choice(PRICES),
                        "USD",
                        "published",
                        rng.choice(self.instructor_ids),
                        published_at,
                        published_at - dt.timedelta(days=rng.uniform(1, 60)),
                        published_at,
                    )
                )
                average = rng.uniform(3.2, 5.0)
                self.counters.append((course_id, enrollments, ratings, round(average * ratings)))
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY course_stats (course_id, enrollment_count, rating_count, rating_points) "
                "FROM STDIN"
            ) as copy,
        ):
            for row in self.counters:
                copy.write_row(row)
        return self.courses

    def description(self, vietnamese: bool, name: str, level: str, words: dict[str, str]) -> str:
        rng = self.rng
        audience = rng.choice(AUDIENCES_VI if vietnamese else AUDIENCES_EN).format(s=name)
        prior = (PRIOR_VI if vietnamese else PRIOR_EN)[level].format(s=name, **words)
        sentences = [
            sentence.format(
                n=self.lessons_per_course, audience=audience, prior=prior, s=name, **words
            )
            for sentence in (DESCRIPTION_VI if vietnamese else DESCRIPTION_EN)
        ]
        return " ".join(sentences)

    def copy_syllabus(self, conn: psycopg.Connection[Any]) -> tuple[int, int]:
        per_module = self.lessons_per_course / self.modules_per_course
        lessons: list[tuple[Any, ...]] = []
        modules = 0
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY modules (id, course_id, title, position) FROM STDIN") as copy,
        ):
            for course in self.course_texts:
                labels = MODULES_VI if course.vietnamese else MODULES_EN
                prefix = "Phần" if course.vietnamese else "Part"
                module_ids = []
                for position in range(self.modules_per_course):
                    module_id = self.new_id()
                    module_ids.append(module_id)
                    label = labels[position % len(labels)]
                    copy.write_row(
                        (module_id, course.id, f"{prefix} {position + 1}: {label}", position)
                    )
                    modules += 1
                lessons.extend(self.lesson_rows(course, module_ids, per_module))
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY lessons (id, module_id, course_id, title, kind, content, video_url, "
                "duration_seconds, estimated_minutes, is_preview, position) FROM STDIN"
            ) as copy,
        ):
            for row in lessons:
                copy.write_row(row)
        return modules, len(lessons)

    def lesson_rows(
        self, course: _CourseText, module_ids: list[uuid.UUID], per_module: float
    ) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        pool = course.subject.topics_vi if course.vietnamese else course.subject.topics_en
        aspects = ASPECTS_VI if course.vietnamese else ASPECTS_EN
        count = self.lessons_per_course
        topics = rng.sample(pool, min(count, len(pool)))
        topics += [rng.choice(pool) for _ in range(count - len(topics))]
        positions = [0] * len(module_ids)
        for number, topic in enumerate(topics):
            module = min(int(number / per_module), len(module_ids) - 1)
            title = topic if rng.random() < 0.5 else f"{topic}: {rng.choice(aspects)}"
            lesson_id = self.new_id()
            roll = rng.random()
            kind = "video" if roll < 0.7 else "text" if roll < 0.95 else "file"
            minutes = rng.randint(5, 45)
            yield (
                lesson_id,
                module_ids[module],
                course.id,
                title,
                kind,
                f"{title}. " * 3 if kind == "text" else "",
                f"https://video.example.com/{lesson_id}.mp4" if kind == "video" else None,
                minutes * 60 if kind == "video" else None,
                minutes,
                number == 0,
                positions[module],
            )
            positions[module] += 1


# Search queries -----------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    kind: str
    q: str


# Words nobody searches for alone (the `lyceum` configuration keeps every word).
FILLER = frozenset({"with", "from", "for", "the", "and", "into"})
QUERY_MIX: tuple[tuple[str, float], ...] = (
    ("word", 0.15),  # one word, often broad: "python", "data", "history"
    ("subject", 0.15),  # an English subject: "machine learning"
    ("vi-unaccented", 0.15),  # "lap trinh python", "co so du lieu"
    ("vi-accented", 0.10),  # "Cơ sở dữ liệu"
    ("subject+topic", 0.20),  # "python error handling"
    ("topic", 0.20),  # a lesson topic: "gradient descent" (mostly lesson titles)
    ("no-match", 0.05),  # a typo: zero results, so the trigram suggestions run too
)


def _typo(rng: random.Random, text: str) -> str:
    letters = list(text)
    candidates = [i for i, c in enumerate(letters) if c.isalpha()]
    for i in rng.sample(candidates, min(2, len(candidates))):
        letters[i] = rng.choice("qxzj")
    return "".join(letters)


def search_queries(count: int, seed: int) -> list[Query]:
    """`count` distinct queries (so each misses the catalog cache) in a fixed mix of
    kinds, built from the same vocabulary as the data."""
    rng = random.Random(seed + 1)
    pools: dict[str, list[str]] = {kind: [] for kind, _ in QUERY_MIX}
    for subject in SUBJECTS:
        for name in subject.en:
            pools["subject"].append(name.lower())
            pools["word"].extend(
                w.lower() for w in name.split() if len(w) > 3 and w.lower() not in FILLER
            )
            for topic in subject.topics_en:
                pools["subject+topic"].append(f"{name.split()[0]} {topic}".lower())
        for name in subject.vi:
            pools["vi-accented"].append(name)
            pools["vi-accented"].append(name.lower())
            plain = unaccent(name).lower()
            pools["vi-unaccented"].append(plain)
            pools["vi-unaccented"].append(" ".join(plain.split()[:2]))
        pools["word"].extend(subject.tags)
        pools["topic"].extend(t.lower() for t in subject.topics_en)
        pools["topic"].extend(unaccent(t).lower() for t in subject.topics_vi)
        pools["no-match"].extend(_typo(rng, name.lower()) for name in subject.en)
    seen: set[str] = set()
    for kind in pools:
        unique = [q for q in dict.fromkeys(pools[kind]) if q not in seen]
        seen.update(unique)
        rng.shuffle(unique)
        pools[kind] = unique
    chosen: list[Query] = []
    for kind, share in QUERY_MIX:
        take = min(round(count * share), len(pools[kind]))
        chosen += [Query(kind, q) for q in pools[kind][:take]]
        pools[kind] = pools[kind][take:]
    spare = [Query(kind, q) for kind, qs in pools.items() for q in qs]
    rng.shuffle(spare)
    chosen += spare[: max(0, count - len(chosen))]
    rng.shuffle(chosen)
    return chosen[:count]


# Search latency (client process) ------------------------------------------------------


@dataclass
class SearchSample:
    kind: str
    q: str
    status: int
    seconds: float
    total: int
    error: str = ""


def _search_process(base: str, queries: list[Query], results: Connection) -> None:
    samples: list[SearchSample] = []
    try:
        with httpx.Client(base_url=base, timeout=SEARCH_TIMEOUT) as client:
            for query in queries:
                url = f"{SEARCH_PATH}?{urlencode({'q': query.q})}"
                started = time.perf_counter()
                try:
                    response = client.get(url)
                    elapsed = time.perf_counter() - started
                except httpx.HTTPError as error:
                    samples.append(
                        SearchSample(query.kind, query.q, 0, math.nan, 0, repr(error)[:200])
                    )
                    continue
                total = 0
                error_text = ""
                if response.status_code == 200:
                    total = int(response.json().get("total", 0))
                else:
                    error_text = response.text[:200]
                samples.append(
                    SearchSample(
                        query.kind, query.q, response.status_code, elapsed, total, error_text
                    )
                )
        results.send(("ok", samples))
    except Exception as error:
        with contextlib.suppress(OSError):
            results.send(("error", f"{type(error).__name__}: {error}"))
        raise
    finally:
        results.close()


def run_searches(port: int, queries: list[Query]) -> list[SearchSample]:
    """The queries one after another, on one keep-alive connection, from its own process."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    base = f"http://{LOOPBACK}:{port}"
    process = context.Process(
        target=_search_process, args=(base, queries, sender), name="bench-search", daemon=True
    )
    process.start()
    sender.close()
    try:
        budget = 60.0 + len(queries) * SEARCH_TIMEOUT
        if not receiver.poll(budget):
            raise BenchError(f"search client did not report within {budget:.0f}s")
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise BenchError(
                f"search client died without reporting (exit code {process.exitcode})"
            ) from None
        if kind != "ok":
            raise BenchError(f"search client failed: {payload}")
        samples: list[SearchSample] = payload
        return samples
    except BaseException:
        process.terminate()
        raise
    finally:
        receiver.close()
        process.join(10.0)
        if process.is_alive():
            process.kill()
            process.join(5.0)


def search_stats(samples: Sequence[SearchSample]) -> dict[str, float]:
    ok = [s for s in samples if s.status == 200]
    latencies = sorted(s.seconds * 1000 for s in ok)
    return {
        "queries": float(len(samples)),
        "errors": float(len(samples) - len(ok)),
        "p50_ms": percentile(latencies, 50.0),
        "p90_ms": percentile(latencies, 90.0),
        "p99_ms": percentile(latencies, 99.0),
        "max_ms": latencies[-1] if latencies else math.nan,
        "mean_results": sum(s.total for s in ok) / len(ok) if ok else math.nan,
    }


# Database time of the catalog's statements ---------------------------------------------

# Names for the statements the catalog sends, by a fragment each contains (first match).
STATEMENT_NAMES: tuple[tuple[str, str], ...] = (
    ("count(*) OVER", "ranked page"),
    ("ts_headline", "headlines"),
    ("course_instructors", "instructors"),
    ("WITH ORDINALITY", "normalise"),
    ("term = ANY", "known words"),
    ("term %", "similar words"),
    ("word_similarity", "title suggestions"),
)
EXPLAIN_NAMES = tuple(name for _, name in STATEMENT_NAMES)


def _statement_name(statement: str) -> str:
    return next((name for fragment, name in STATEMENT_NAMES if fragment in statement), "other")


def catalog_statements(url: str, q: str) -> list[tuple[str, dict[str, Any]]]:
    """The SQL statements (with their parameters) that the real CourseService sends for
    one search page, recorded as they are executed, so the EXPLAINs below always time
    what the code does."""
    from sqlalchemy import event

    from lyceum.courses.repository import CatalogFilters
    from lyceum.courses.service import CourseService
    from lyceum.kit.cache import MemoryCache
    from lyceum.kit.db import Database
    from lyceum.kit.pagination import PageParams

    recorded: list[tuple[str, dict[str, Any]]] = []

    def record(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        recorded.append((statement, dict(parameters or {})))

    async def search() -> None:
        database = Database(url, pool_size=1, max_overflow=0)
        event.listen(database.engine.sync_engine, "before_cursor_execute", record)
        try:
            async with database.sessionmaker() as session:
                service = CourseService(
                    session, cache=MemoryCache(), cache_ttl=60, now=dt.datetime.now(dt.UTC)
                )
                await service.catalog_json(CatalogFilters(q=q), PageParams(page=1, size=20))
        finally:
            await database.dispose()

    asyncio.run(search())
    return recorded


def explain_searches(url: str, queries: Sequence[SearchSample], show_plans: bool) -> list[Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement the catalog sends for each query, in
    one transaction as the service runs them (its `set_config` calls run as they are)."""
    report: list[dict[str, Any]] = []
    with psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as conn:
        for sample in queries:
            timings: dict[str, float] = {}
            for statement, params in catalog_statements(url, sample.q):
                name = _statement_name(statement)
                if "set_config" in statement:
                    conn.execute(statement, params)
                    continue
                explain = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}"
                row = conn.execute(explain, params).fetchone()
                plan: list[dict[str, Any]] = row[0] if row else [{}]
                timings[name] = timings.get(name, 0.0) + float(
                    plan[0].get("Execution Time", math.nan)
                )
                if show_plans:
                    text_plan = conn.execute(
                        f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params
                    ).fetchall()
                    print(f"\n--- {name} for q={sample.q!r} ---")
                    print("\n".join(line[0] for line in text_plan))
            conn.rollback()
            report.append(
                {
                    "q": sample.q,
                    "kind": sample.kind,
                    "matches": sample.total,
                    "ms": timings,
                    "db_ms": sum(timings.values()),
                    "http_ms": sample.seconds * 1000,
                }
            )
    return report


# Servers ------------------------------------------------------------------------------


def start_bare(temp: Path) -> Server:
    return start_server(
        "bare",
        lambda port: uvicorn_argv("bench.bare_app:app", port),
        log_path=temp / "bare.log",
        env=os.environ,
        cwd=REPO_ROOT,  # so that `bench.bare_app` imports
        timeout=BARE_STARTUP_TIMEOUT,
    )


def start_lyceum(temp: Path, database_url: str) -> Server:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LYCEUM_DATA_DIR": str(temp / "data"),
        "LOG_LEVEL": "INFO",  # Lyceum's own access log stays on, as in a default install
        "ENVIRONMENT": "development",
    }
    server = start_server(
        "lyceum",
        lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
        log_path=temp / "lyceum.log",
        env=env,
        cwd=temp,  # away from the checkout, so a developer's `.env` does not leak in
        timeout=LYCEUM_STARTUP_TIMEOUT,
    )
    wait_until_settled(server)
    return server


# Report -------------------------------------------------------------------------------


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN -> "-"


def print_search(samples: Sequence[SearchSample]) -> None:
    header = f"{'query kind':<15} {'queries':>7} {'p50 ms':>7} {'p99 ms':>7} {'mean results':>12}"
    print(header)
    print("-" * len(header))
    for kind, _ in (*QUERY_MIX, ("all", 0.0)):
        subset = [s for s in samples if kind in ("all", s.kind)]
        if not subset:
            continue
        stats = search_stats(subset)
        print(
            f"{kind:<15} {len(subset):>7} {fmt(stats['p50_ms']):>7} {fmt(stats['p99_ms']):>7} "
            f"{fmt(stats['mean_results'], 1):>12}"
        )


def print_explain(report: list[dict[str, Any]]) -> None:
    names = [name for name in EXPLAIN_NAMES if any(name in row["ms"] for row in report)]
    header = f"{'query':<24} {'matches':>7} " + " ".join(f"{n:>11}" for n in names)
    header += f" {'db total':>9} {'http':>7}"
    print(header)
    print("-" * len(header))
    for row in report:
        cells = " ".join(f"{fmt(row['ms'].get(n, math.nan)):>11}" for n in names)
        print(
            f"{row['q'][:24]:<24} {row['matches']:>7} {cells} {fmt(row['db_ms']):>9} "
            f"{fmt(row['http_ms']):>7}"
        )


def summarize(results: dict[str, list[LoadResult]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "rps": median([r.rps for r in rounds]),
            "p50_ms": median([r.p50_ms for r in rounds]),
            "p99_ms": median([r.p99_ms for r in rounds]),
            "server_cpu_us_per_request": median([r.server_cpu_us_per_request for r in rounds]),
            "errors": float(sum(r.errors for r in rounds)),
        }
        for name, rounds in results.items()
    }


# Run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The catalog at scale: search latency, and cached listing throughput "
        "against a bare FastAPI app."
    )
    parser.add_argument("--courses", type=int, default=10_000, help="published courses")
    parser.add_argument("--lessons-per-course", type=int, default=10, help="lessons per course")
    parser.add_argument("--queries", type=int, default=300, help="distinct search queries")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round (5)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target (3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the data")
    parser.add_argument(
        "--explain", action="store_true", help="also print the EXPLAIN ANALYZE plans"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (logs, data) afterwards"
    )
    args = parser.parse_args(argv)
    if (
        args.courses < 1
        or args.lessons_per_course < 1
        or args.queries < 1
        or args.duration <= 0
        or args.warmup < 0
        or args.concurrency < 1
        or args.rounds < 1
    ):
        parser.error(
            "need --courses, --lessons-per-course, --queries, --concurrency, --rounds >= 1, "
            "--duration > 0 and --warmup >= 0"
        )
    return args


def prepare_database(temp: Path, args: argparse.Namespace) -> tuple[Any, str, SeedReport]:
    postgres, url = migrated_postgres(temp, DATABASE)
    try:
        print(
            f"seeding {args.courses:,} courses x {args.lessons_per_course} lessons ...",
            flush=True,
        )
        report = Seeder(args.courses, args.lessons_per_course, args.seed).seed(url)
    except BaseException:
        postgres.stop()
        raise
    print(
        f"  seeded {report.courses:,} courses, {report.modules:,} modules, "
        f"{report.lessons:,} lessons in {report.total_seconds:.1f}s",
        flush=True,
    )
    return postgres, url, report


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    postgres, url, seeding = prepare_database(temp, args)
    servers: dict[str, Server] = {}
    try:
        print("starting servers ...", flush=True)
        servers["bare"] = start_bare(temp)
        servers["lyceum"] = start_lyceum(temp, url)
        paths = {"bare": BARE_PATH, "lyceum": CATALOG_PATH}
        for name, server in servers.items():
            status, body = probe(server.port, paths[name], timeout=30.0)
            if status != 200:
                raise BenchError(f"{name}: GET {paths[name]} -> {status} {body[:300]!r}")
            print(
                f"  {name:<7} pid {server.pid:<7} port {server.port:<5} "
                f"ready in {server.started_in:4.1f}s  GET {paths[name]} -> {status} "
                f"({len(body):,} bytes)",
                flush=True,
            )
        listed = json.loads(probe(servers["lyceum"].port, CATALOG_PATH)[1])
        if listed.get("total") != args.courses:
            raise BenchError(f"catalog lists {listed.get('total')} courses, not {args.courses}")

        # Search: distinct queries, one at a time, every one a cache miss.
        queries = search_queries(args.queries + SEARCH_WARMUP_QUERIES, args.seed)
        print(
            f"search: {SEARCH_WARMUP_QUERIES} warm-up + {args.queries} measured distinct "
            "queries, one at a time ...",
            flush=True,
        )
        all_samples = run_searches(servers["lyceum"].port, queries)
        samples = all_samples[SEARCH_WARMUP_QUERIES:]
        search = search_stats(samples)
        search_errors = sum(1 for s in all_samples if s.status != 200)
        for sample in [s for s in all_samples if s.status != 200][:5]:
            print(f"    error: q={sample.q!r} -> {sample.status} {sample.error}", flush=True)

        ok = sorted((s for s in samples if s.status == 200), key=lambda s: s.total)
        picks: list[SearchSample] = []
        if ok:
            by_latency = sorted(ok, key=lambda s: s.seconds)
            for pick in (ok[-1], ok[len(ok) // 2], by_latency[-1], ok[0]):
                if pick not in picks:
                    picks.append(pick)
        explained = explain_searches(url, picks, args.explain)

        # Cached listing throughput against the bare app, alternating rounds.
        def spec(name: str, duration: float) -> LoadSpec:
            return LoadSpec(
                port=servers[name].port,
                path=paths[name],
                concurrency=args.concurrency,
                duration=duration,
            )

        warmup_errors = 0
        if args.warmup > 0:
            print(f"throughput: warming up ({args.warmup:g}s each) ...", flush=True)
            for name in TARGETS:
                warm = measure(servers[name], spec(name, args.warmup))
                warmup_errors += warm.errors
                print(
                    f"  {name:<7} {fmt(warm.rps, 0):>7} req/s, {warm.errors} errors (discarded)",
                    flush=True,
                )
        print(
            f"throughput: {args.rounds} rounds x {args.duration:g}s per target, "
            f"{args.concurrency} connections, alternating {' / '.join(TARGETS)} ...",
            flush=True,
        )
        rounds: list[tuple[str, int, LoadResult]] = []
        results: dict[str, list[LoadResult]] = {name: [] for name in TARGETS}
        for index in range(1, args.rounds + 1):
            for name in TARGETS:
                result = measure(servers[name], spec(name, args.duration))
                rounds.append((name, index, result))
                results[name].append(result)
                print(
                    f"  round {index} {name:<7} {fmt(result.rps, 0):>7} req/s  "
                    f"p50 {fmt(result.p50_ms)} ms  p99 {fmt(result.p99_ms)} ms  "
                    f"errors {result.errors}",
                    flush=True,
                )
                for sample_error in result.error_samples:
                    print(f"    error: {sample_error}", flush=True)
    finally:
        for server in reversed(servers.values()):
            code = stop_server(server)
            if code not in (0, None):
                print(f"  {server.name} exited with code {code}; log {server.log_path}")
        postgres.stop()

    summary = summarize(results)
    bare_rps = summary["bare"]["rps"]
    ratio = summary["lyceum"]["rps"] / bare_rps if bare_rps else 0.0
    load_after = load_average()

    print()
    print("search latency (distinct queries, sequential, each a catalog-cache miss):")
    print_search(samples)
    print()
    print(
        "database time of the catalog's statements (EXPLAIN ANALYZE) for a few of those "
        "queries, ms; `http` is the same query's measured request time:"
    )
    print_explain(explained)
    print()
    header = f"{'median of ' + str(args.rounds):<26} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
    header += f"{'srv CPU us/req':>14} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for name, s in summary.items():
        label = f"{name} ({paths[name].split('?')[0]})"
        print(
            f"{label:<26} {fmt(s['rps'], 0):>9} {fmt(s['p50_ms']):>7} {fmt(s['p99_ms']):>7} "
            f"{fmt(s['server_cpu_us_per_request'], 0):>14} {int(s['errors']):>6}"
        )
    print()
    print(f"load average before/after: {load_before} / {load_after}")
    print(
        f"seeding: {seeding.courses:,} courses, {seeding.lessons:,} lessons in "
        f"{seeding.total_seconds:.1f}s"
    )
    print(
        f"search p50 {fmt(search['p50_ms'], 1)} ms, p99 {fmt(search['p99_ms'], 1)} ms, "
        f"mean {fmt(search['mean_results'], 0)} results "
        f"(target p50 < {TARGET_SEARCH_P50_MS:g} ms)"
    )
    print(f"cached catalog ratio lyceum/bare: {ratio:.2f} (target >= {TARGET_RATIO})")

    return {
        "scenario": SCENARIO,
        "settings": {
            "courses": args.courses,
            "lessons_per_course": args.lessons_per_course,
            "queries": args.queries,
            "duration": args.duration,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "seed": args.seed,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "seeding": {
            "courses": seeding.courses,
            "modules": seeding.modules,
            "lessons": seeding.lessons,
            "instructors": seeding.instructors,
            "seconds": seeding.seconds,
            "total_seconds": seeding.total_seconds,
        },
        "search": {
            **search,
            "target_p50_ms": TARGET_SEARCH_P50_MS,
            "meets_target": search["p50_ms"] < TARGET_SEARCH_P50_MS,
            "by_kind": {
                kind: search_stats([s for s in samples if s.kind == kind]) for kind, _ in QUERY_MIX
            },
            "explain": explained,
            "samples": [
                {
                    "kind": s.kind,
                    "q": s.q,
                    "status": s.status,
                    "ms": s.seconds * 1000,
                    "total": s.total,
                }
                for s in samples
            ],
        },
        "cached_catalog": {
            "path": CATALOG_PATH,
            "baseline_path": BARE_PATH,
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio >= TARGET_RATIO,
            "median": summary,
            "rounds": [
                {"target": name, "round": index, **result.to_dict()}
                for name, index, result in rounds
            ],
        },
        "errors": search_errors + warmup_errors + sum(r.errors for _, _, r in rounds),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return scenario_main("catalog", args, run)


if __name__ == "__main__":
    sys.exit(main())
