"""Word lists and alt-text makers of the synthetic corpus (English and foreign)."""

from __future__ import annotations

import random



# --------------------------------------------------------------------------------------
# Vocabulary


COLORS = ["red", "blue", "green", "yellow", "black", "white", "brown", "gray", "pink",
          "orange", "purple", "golden", "silver", "dark", "bright"]
NOUNS = ["car", "dog", "cat", "house", "tree", "flower", "dress", "shirt", "table", "chair",
         "bird", "horse", "boat", "bicycle", "door", "cake", "bottle", "book", "bridge",
         "lamp", "sofa", "guitar", "mountain", "beach", "kitchen", "garden", "street",
         "train", "shoe", "truck"]
SURFACES = ["table", "beach", "street", "wooden floor", "kitchen counter",
            "white background", "grass", "snow", "sand"]
PLACES = ["old town", "harbor", "castle", "river", "main square", "city hall", "lake",
          "valley", "tower", "market"]
CITIES = ["London", "Paris", "New York", "Chicago", "Sydney", "Toronto", "Berlin",
          "Seattle", "Austin", "Denver"]
FIRST = ["John", "Mary", "David", "Sarah", "James", "Emma", "Michael", "Laura", "Robert", "Anna"]
LAST = ["Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark",
        "Walker", "Hall"]
BRANDS = ["Northwind", "Contoso", "Fabrikam", "Acme", "Globex", "Initech", "Vandelay", "Tailspin"]
PRODUCTS = ["Running Shoe", "Coffee Maker", "Wireless Headphones", "Desk Lamp", "Backpack",
            "Water Bottle", "Smart Watch", "Office Chair"]
EVENTS = ["annual meeting", "summer festival", "charity run", "book launch",
          "award ceremony", "farmers market"]
EN_PARAGRAPHS = [
    "Welcome to our blog. We post new pictures and stories every week.",
    "Here you can find reviews, guides and photos from our readers.",
    "This article was updated last month with new information and images.",
    "Our team tested every product in real life before writing this review.",
    "Scroll down to see the full gallery and leave a comment below.",
    "Prices and availability may change, so check the shop for the latest offers.",
    "The weather was perfect and we took hundreds of pictures along the way.",
    "Sign up for our newsletter to get the best stories in your inbox.",
]
EN_NAV = [("/", "Home"), ("/about", "About us"), ("/blog/", "Blog")]

# Non-English pages: titles, a paragraph, navigation and alt texts written in the language.
FOREIGN = {
    "de": {
        "logo": "Firmenlogo",
        "titles": ["Urlaub am Bodensee", "Rezepte für den Sommer", "Neuigkeiten aus München",
                   "Unser Angebot im Überblick"],
        "paras": ["Willkommen auf unserer Seite. Hier finden Sie aktuelle Berichte und viele Bilder.",
                  "Die schönsten Ausflugsziele für die ganze Familie."],
        "nav": [("/", "Startseite"), ("/ueber-uns", "Über uns"), ("/kontakt", "Kontakt")],
        "alts": ["Ein rotes Auto vor dem Haus", "Blick auf den Bodensee bei Sonnenuntergang",
                 "Unser Team im Büro", "Frühstück mit Brötchen und Kaffee",
                 "Straße in München im Winter", "Kinder spielen im Garten",
                 "Schwarzwälder Kirschtorte", "Wanderweg in den Alpen"],
        "hosts": ["reise.example.org", "www.kochen.example.com"],
        "charsets": ["utf-8", "iso-8859-1"],
    },
    "fr": {
        "logo": "Logo de l'entreprise",
        "titles": ["Recettes de saison", "Voyage en Provence", "Actualités de Paris",
                   "Nos meilleures adresses"],
        "paras": ["Bienvenue sur notre site. Découvrez nos articles et nos photos.",
                  "Les plus belles balades à faire en famille cet été."],
        "nav": [("/", "Accueil"), ("/a-propos", "À propos"), ("/contact", "Contact")],
        "alts": ["Une voiture rouge garée devant la maison",
                 "Vue sur la tour Eiffel depuis le Trocadéro", "Recette de la tarte aux pommes",
                 "Château de Chambord en été", "Marché de Noël à Strasbourg",
                 "Plage de Biarritz au coucher du soleil", "Croissants et café au lait",
                 "L'équipe de rédaction"],
        "hosts": ["www.cuisine.example.net", "voyage.example.org"],
        "charsets": ["utf-8", "windows-1252"],
    },
    "es": {
        "logo": "Logotipo",
        "titles": ["Recetas de cocina", "Viajes por Andalucía", "Noticias de Madrid",
                   "Nuestras ofertas"],
        "paras": ["Bienvenido a nuestra página. Aquí encontrará noticias y muchas fotos.",
                  "Los mejores destinos para visitar en familia."],
        "nav": [("/", "Inicio"), ("/quienes-somos", "Quiénes somos"), ("/contacto", "Contacto")],
        "alts": ["Un coche rojo aparcado en la calle", "Vista de la playa al atardecer",
                 "Paella valenciana con mariscos", "Niños jugando en el parque",
                 "La Sagrada Familia en Barcelona", "Mercado de San Miguel en Madrid",
                 "Tortilla de patatas casera", "Montañas de Sierra Nevada con nieve"],
        "hosts": ["www.recetas.example.com", "viajes.example.net"],
        "charsets": ["utf-8"],
    },
    "ru": {
        "logo": "Логотип компании",
        "titles": ["Новости Москвы", "Рецепты домашней кухни", "Путешествия по России",
                   "Наши товары"],
        "paras": ["Добро пожаловать на наш сайт. Здесь вы найдёте новости и фотографии.",
                  "Лучшие места для отдыха всей семьёй."],
        "nav": [("/", "Главная"), ("/o-nas", "О нас"), ("/kontakty", "Контакты")],
        "alts": ["Красная машина на улице", "Вид на Кремль с реки", "Логотип компании",
                 "Рецепт борща со сметаной", "Зимний лес под Москвой", "Дети играют во дворе",
                 "Собор Василия Блаженного", "Озеро Байкал летом"],
        "hosts": ["novosti.example.com", "www.recepty.example.org"],
        "charsets": ["windows-1251"],
    },
    "ja": {
        "logo": "会社のロゴ",
        "titles": ["東京の観光ガイド", "今日のレシピ", "新商品のお知らせ", "旅行ブログ"],
        "paras": ["私たちのサイトへようこそ。最新のニュースと写真をお届けします。",
                  "家族で楽しめるおすすめの場所を紹介します。"],
        "nav": [("/", "ホーム"), ("/about", "会社概要"), ("/contact", "お問い合わせ")],
        "alts": ["赤い車", "富士山と桜", "会社のロゴ", "東京タワーの夜景", "猫が寝ている写真",
                 "京都の金閣寺", "ラーメンと餃子", "北海道の雪景色"],
        "hosts": ["www.kanko.example.net", "blog.ryokou.example.com"],
        "charsets": ["utf-8"],
    },
}
EN_HOSTS = ["www.cars.example.com", "shop.example.com", "news.example.org", "food.example.net",
            "travel.example.com", "photos.example.org", "home.example.com", "reviews.example.net"]
CDN_HOSTS = ["cdn.example.net", "static.example.com", "images.example.org",
             "media.example.com"]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def english_alt(rng: random.Random) -> str:
    """An English alt text: mostly lower-case phrases made of common words (they match
    the default metadata), some that match nothing (``Logo``, product names, file names)."""
    c, n, n2 = rng.choice(COLORS), rng.choice(NOUNS), rng.choice(NOUNS)
    k = rng.randrange(24)
    if k == 0:
        return "a photo of a %s %s" % (c, n)
    if k == 1:
        return "%s %s on the %s" % (_cap(c), n, rng.choice(SURFACES))
    if k == 2:
        return "close-up of a %s %s" % (c, n)
    if k == 3:
        return "%s %s %s%d" % (rng.choice(BRANDS), rng.choice(PRODUCTS), rng.choice("XSGT"),
                               rng.randrange(1, 10))
    if k == 4:
        return "%d.%d stars" % (rng.randrange(1, 5), rng.choice([0, 5]))
    if k == 5:
        return "%d out of 5 stars" % rng.randrange(1, 6)
    if k == 6:
        return rng.choice(["Logo", "logo", "LOGO", "Thumbnail", "IMG_%04d.JPG" % rng.randrange(10000)])
    if k == 7:
        return "Portrait of %s %s" % (rng.choice(FIRST), rng.choice(LAST))
    if k == 8:
        return "%s %s at the %s in %s, %d" % (rng.choice(FIRST), rng.choice(LAST),
                                             rng.choice(EVENTS), rng.choice(CITIES),
                                             rng.randrange(2005, 2025))
    if k == 9:
        return "View of the %s from the %s." % (rng.choice(PLACES), rng.choice(PLACES))
    if k == 10:
        return "how to clean your %s: a step-by-step guide" % n
    if k == 11:
        return rng.choice(["Click here!", "Buy now", "read more", "Read more...", "photo",
                           "image", "thumbnail"])
    if k == 12:
        return "Figure %d: the %s %s in the %s" % (rng.randrange(1, 12), c, n, rng.choice(PLACES))
    if k == 13:
        return "sunset over the %s\nwith mountains in the background" % rng.choice(["lake", "sea", "river"])
    if k == 14:
        return "%s\u00a0%s for sale" % (c, n)
    if k == 15:
        return "\t%s %s and a %s %s\t" % (c, n, rng.choice(COLORS), n2)
    if k == 16:
        return "Fish & Chips with %s peas" % rng.choice(["green", "fresh", "mushy"])
    if k == 17:
        return 'The "best" %s in %s' % (n, rng.choice(CITIES))
    if k == 18:
        return "mom's homemade %s pie" % rng.choice(["apple", "cherry", "pumpkin"])
    if k == 19:
        return rng.choice(["hot dog stand at the %s" % rng.choice(EVENTS), "Hot Dog!",
                           "hot-dog with mustard", "ice cream on a hot day"])
    if k == 20:
        return "Café menu \u2013 today's specials"
    if k == 21:
        return "a %s %s and two %ss in the %s" % (c, n, n2, rng.choice(PLACES))
    if k == 22:
        return "%s %s  with  extra   spaces " % (c, n)
    return "my %s %s (%d)" % (c, n, rng.randrange(2, 30))


def foreign_alt(rng: random.Random, lang: str) -> str:
    alt = rng.choice(FOREIGN[lang]["alts"])
    r = rng.randrange(6)
    if r == 0 and lang == "ja":
        alt = alt + "\u3000" + rng.choice(FOREIGN[lang]["alts"])
    elif r == 0:
        alt = alt.replace(" ", "\u00a0", 1)
    elif r == 1:
        alt = alt + "\n" + rng.choice(FOREIGN[lang]["alts"])
    return alt


